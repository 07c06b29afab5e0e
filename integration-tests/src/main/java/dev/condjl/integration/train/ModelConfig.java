package dev.condjl.integration.train;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Everything needed to rebuild a trained model and its task: saved as {@code config.json} beside the weights, read
 * by {@code --resume}, {@code condjl eval} and {@code condjl generate}.
 *
 * @param task {@code retrieval} or {@code text}
 * @param seqLen n, tokens per sequence
 * @param vocabSize token ids {@code [0, vocabSize)}
 * @param numClasses outputs of the head
 * @param dim model width
 * @param depth routed layers
 * @param heads light and heavy attention heads
 * @param dimHead light and heavy attention head width
 * @param lightWindow the light attention's window ({@code light_window_size})
 * @param heavyTokensQ routed queries per sequence (Kq)
 * @param heavyTokensKv routed keys/values per sequence (Kkv), per kv route
 * @param kvRoutes the heavy attention's kv routes ({@code num_routed_kv}), each with its own routing token and
 *     {@code heads / kvRoutes} heads; 0 in configurations saved before it existed, which means 1
 * @param heavyTokensFf tokens routed to the heavy feed-forward per sequence (Kff)
 * @param routerEps the routers' final coordinate-descent ε ({@code router_kwargs eps})
 * @param cosineRouting the routers' {@code cosine_sim_routing}
 * @param routerNoise the routers' exploration noise σ in training (0 in configurations saved before it existed)
 * @param zeroInitHeavyBranch whether the heavy branches start at zero (their query and output projections)
 *     ({@code optZeroInitHeavyBranch}; false in configurations saved before it existed, which only matters for the
 *     initial weights)
 * @param dropPathRate stochastic depth rate of the last layer (linear schedule from 0 at the first)
 * @param dropPathMode a {@link dev.condjl.stochastic.StochasticDepthMode} name
 * @param dropout {@code none}, {@code weight}, {@code noise} or {@code learned}
 * @param dropoutRate weight dropout p, or noise σ, or the learned dropout's penalty coefficient
 * @param pairs retrieval: key→value records per sequence
 * @param keys retrieval: distinct keys
 * @param values retrieval: distinct values
 * @param corpus text: the corpus file it was trained on
 * @param alphabet text: the characters, token id = index
 */
public record ModelConfig(
        String task,
        int seqLen,
        int vocabSize,
        int numClasses,
        int dim,
        int depth,
        int heads,
        int dimHead,
        int lightWindow,
        int heavyTokensQ,
        int heavyTokensKv,
        int kvRoutes,
        int heavyTokensFf,
        double routerEps,
        boolean cosineRouting,
        double routerNoise,
        boolean zeroInitHeavyBranch,
        double dropPathRate,
        String dropPathMode,
        String dropout,
        double dropoutRate,
        int pairs,
        int keys,
        int values,
        String corpus,
        String alphabet) {

    /** File name of the configuration inside a checkpoint directory. */
    public static final String FILE = "config.json";

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();

    /** Task name of {@link RetrievalTask}. */
    public static final String RETRIEVAL = "retrieval";
    /** Task name of {@link TextCorpus}. */
    public static final String TEXT = "text";

    /**
     * Rebuilds the task the model was trained on.
     *
     * @param corpusOverride null, or another text file to evaluate a text model on (its alphabet must fit)
     * @return the task
     * @throws IOException if the corpus cannot be read
     */
    public TrainingTask task(Path corpusOverride) throws IOException {
        if (RETRIEVAL.equals(task)) {
            return new RetrievalTask(seqLen, pairs, keys, values, lightWindow);
        }
        Path file = corpusOverride != null ? corpusOverride : Path.of(corpus);
        return TextCorpus.read(file, seqLen, alphabet);
    }

    /**
     * The kv routes, 1 for configurations saved before {@link #kvRoutes} existed.
     *
     * @return {@code num_routed_kv}, {@code >= 1}
     */
    public int numRoutedKv() {
        return Math.max(1, kvRoutes);
    }

    /**
     * Whether the model is a next-token predictor.
     *
     * @return true for the text task
     */
    public boolean causal() {
        return TEXT.equals(task);
    }

    /**
     * Writes {@code config.json} into a directory.
     *
     * @param dir the checkpoint directory
     * @throws IOException if it cannot be written
     */
    public void save(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(FILE), GSON.toJson(this), StandardCharsets.UTF_8);
    }

    /**
     * Reads {@code config.json} from a checkpoint directory.
     *
     * @param dir the checkpoint directory
     * @return the configuration
     * @throws IOException if it is missing or unreadable
     */
    public static ModelConfig load(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new IOException("no " + FILE + " in " + dir + ": not a condjl train checkpoint");
        }
        return GSON.fromJson(Files.readString(file, StandardCharsets.UTF_8), ModelConfig.class);
    }
}
