package dev.condjl.integration.train;

import ai.djl.Device;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code condjl train}: trains a routed model on the generated key-value retrieval task (default) or on a text file,
 * then prints a report and the paths of the checkpoint and the picture.
 */
@Command(
        name = "train",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Trains a model of ConditionalRoutedTransformerBlocks with DJL's Trainer.",
            "Default task: key-value retrieval over 512 tokens (generated); --corpus FILE: character-level language "
                    + "model. Writes a checkpoint, train.png (loss curve and routing map) and report.json into the "
                    + "run directory."
        })
public final class TrainCommand implements Callable<Integer> {

    private static final Logger LOG = LogManager.getLogger(TrainCommand.class);

    @Option(names = "--corpus", paramLabel = "FILE", description = "UTF-8 text: train a character-level LM on it")
    Path corpus;

    @Option(names = "--seq-len", description = "tokens per sequence (default: 512, text 256)")
    Integer seqLen;

    @Option(names = "--pairs", description = "retrieval: key->value pairs per sequence (${DEFAULT-VALUE})",
            defaultValue = "1")
    int pairs;

    @Option(names = "--keys", description = "retrieval: distinct keys (${DEFAULT-VALUE})", defaultValue = "16")
    int keys;

    @Option(names = "--values", description = "retrieval: distinct values (${DEFAULT-VALUE})", defaultValue = "16")
    int values;

    @Option(names = "--dim", description = "model width (${DEFAULT-VALUE})", defaultValue = "64")
    int dim;

    @Option(names = "--depth", description = "routed layers (${DEFAULT-VALUE})", defaultValue = "2")
    int depth;

    @Option(names = "--heads", description = "attention heads, light and heavy (${DEFAULT-VALUE})", defaultValue = "4")
    int heads;

    @Option(names = "--dim-head", description = "attention head width (${DEFAULT-VALUE})", defaultValue = "16")
    int dimHead;

    @Option(names = "--light-window", description = "light local attention window (${DEFAULT-VALUE})",
            defaultValue = "32")
    int lightWindow;

    @Option(names = "--heavy-q", description = "routed queries per sequence, Kq (default: 32; text: 8 per light "
            + "window)")
    Integer heavyQ;

    @Option(names = "--heavy-kv", description = "routed keys/values per sequence and kv route, Kkv (text: per "
            + "window, from earlier windows) (${DEFAULT-VALUE})",
            defaultValue = "32")
    int heavyKv;

    @Option(names = "--kv-routes", description = "retrieval: kv routes of the heavy attention (num_routed_kv), each "
            + "with its own routing token, Kkv keys/values and heads/routes heads (${DEFAULT-VALUE})",
            defaultValue = "2")
    int kvRoutes;

    @Option(names = "--heavy-ff", description = "tokens routed to the heavy feed-forward, Kff (${DEFAULT-VALUE})",
            defaultValue = "32")
    int heavyFf;

    @Option(names = "--router-eps", description = "routers' final coordinate-descent epsilon (${DEFAULT-VALUE})",
            defaultValue = "1.0")
    double routerEps;

    @Option(names = "--cosine-routing", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "cosine-similarity routing (default: ${DEFAULT-VALUE})")
    boolean cosineRouting;

    @Option(names = "--router-noise", description = "routers' exploration noise in training: sigma of N(0, sigma^2)"
            + " added to the routing similarities (${DEFAULT-VALUE}; 0 = none)", defaultValue = "0")
    double routerNoise;

    @Option(names = "--zero-heavy-init", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "start the heavy branches' query and output projections at zero, against routing "
                    + "collapse (default: ${DEFAULT-VALUE}; --no-zero-heavy-init draws them as PyTorch does)")
    boolean zeroHeavyInit;

    @Option(names = "--drop-path-rate", description = "stochastic depth rate of the last layer, linear from 0 "
            + "(${DEFAULT-VALUE})", defaultValue = "0.1")
    double dropPathRate;

    @Option(names = "--drop-path-mode", description = "BATCH_SUBSET, DROP_PATH, LAYER_DROP or AUTO "
            + "(${DEFAULT-VALUE})", defaultValue = "BATCH_SUBSET")
    String dropPathMode;

    @Option(names = "--dropout", description = "none, weight (DropConnect), noise (weight noise) or learned "
            + "(LearnedDropout on the embeddings) (${DEFAULT-VALUE})", defaultValue = "none")
    String dropout;

    @Option(names = "--dropout-rate", description = "weight: p (0.1), noise: sigma (0.01), learned: penalty "
            + "coefficient (0.01)")
    Double dropoutRate;

    @Option(names = "--steps", description = "optimizer steps (${DEFAULT-VALUE})", defaultValue = "600")
    int steps;

    @Option(names = "--batch", description = "sequences per step (${DEFAULT-VALUE})", defaultValue = "16")
    int batch;

    @Option(names = "--lr", description = "peak learning rate (${DEFAULT-VALUE})", defaultValue = "3e-3")
    double lr;

    @Option(names = "--warmup", description = "warm-up steps before cosine decay (${DEFAULT-VALUE})",
            defaultValue = "50")
    int warmup;

    @Option(names = "--weight-decay", description = "weight decay, decoupled for AdamW (${DEFAULT-VALUE})",
            defaultValue = "0.01")
    double weightDecay;

    @Option(names = "--optimizer", description = "adamw or adam (${DEFAULT-VALUE})", defaultValue = "adamw")
    String optimizer;

    @Option(names = "--clip", description = "global gradient-norm limit, 0 = off (${DEFAULT-VALUE})",
            defaultValue = "1.0")
    double clip;

    @Option(names = "--seed", description = "seed of the weights, the data and the dropout masks (${DEFAULT-VALUE})",
            defaultValue = "42")
    long seed;

    @Option(names = "--devices", description = "cpu, gpu or gpu:0,1 (${DEFAULT-VALUE})", defaultValue = "cpu")
    String devices;

    @Option(names = "--eval-every", description = "steps between validation points (${DEFAULT-VALUE})",
            defaultValue = "50")
    int evalEvery;

    @Option(names = "--eval-size", description = "validation sequences at the end (${DEFAULT-VALUE})",
            defaultValue = "256")
    int evalSize;

    @Option(names = "--out", description = "base directory of run directories (${DEFAULT-VALUE})",
            defaultValue = "runs")
    Path out;

    @Option(names = "--run-dir", description = "exact run directory (default: <out>/train-<time>)")
    Path runDir;

    @Option(names = "--resume", paramLabel = "CHECKPOINT", description = "continue from a checkpoint directory up "
            + "to --steps; its model configuration is used")
    Path resume;

    @Option(names = "--threads", description = "PyTorch intra-op threads (${DEFAULT-VALUE}): the default model's "
            + "operations are small, so more threads gain little, and on cores shared with other jobs they spin and "
            + "slow each step several times", defaultValue = "1")
    int threads;

    @Option(names = "--progress", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "draw the progress bar (default: ${DEFAULT-VALUE})")
    boolean progress;

    @Option(names = "--gpu-memory-every", paramLabel = "STEPS", defaultValue = "0",
            description = "on a GPU, log the device memory in use every STEPS steps and at step 100, after emptying"
                + " PyTorch's cache (${DEFAULT-VALUE}: never)")
    int gpuMemoryEvery;

    @Option(names = "--profile", paramLabel = "FILE",
            description = "time every step's forward+backward and clip+update (each ended by a device"
                + " synchronisation) and trace the middle step with PyTorch's profiler to FILE, a chrome"
                + " trace; the report adds the medians and the traced step's op and autograd-node counts")
    Path profile;

    @Option(names = "--cuda-graph", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "on one GPU, capture the step's forward+backward once as a CUDA graph and replay it every"
                + " step (eager steps, after one warning, where the model cannot be captured; not with --profile)"
                + " (default: ${DEFAULT-VALUE})")
    boolean cudaGraph;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        if (threads < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--threads (" + threads + ") must be >= 1");
        }
        // read when the engine starts, i.e. before the first DJL call of this process
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        try {
            ModelConfig config = resume != null ? ModelConfig.load(resume) : modelConfig();
            TrainingTask task = config.task(null);
            Device[] deviceList = DeviceList.parse(devices);
            Path dir = runDir != null ? runDir : TrainingRun.newRunDir(out);
            TrainSettings settings = new TrainSettings(steps, batch, lr, warmup, weightDecay, optimizer, clip, seed,
                    deviceList, evalEvery, evalSize, dir, resume, progress, gpuMemoryEvery, profile, cudaGraph);
            RunReport report = TrainingRun.train(config, task, settings, System.err);
            spec.commandLine().getOut().print(report.toText());
            spec.commandLine().getOut().flush();
            if (report.picture() != null) {
                LOG.info("picture: {}", report.picture());
            }
            return 0;
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage(), e);
        }
    }

    /** The model configuration the options describe (the task is read here for its vocabulary). */
    private ModelConfig modelConfig() throws java.io.IOException {
        double rate = dropoutRate != null ? dropoutRate : switch (dropout) {
            case "weight" -> 0.1;
            case "noise" -> 0.01;
            case "learned" -> 0.01;
            case "none" -> 0;
            default -> throw new IllegalArgumentException(
                    "--dropout (" + dropout + ") must be none, weight, noise or learned");
        };
        String mode = dropPathMode.toUpperCase(java.util.Locale.ROOT).replace('-', '_');
        try {
            dev.condjl.stochastic.StochasticDepthMode.valueOf(mode);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--drop-path-mode (" + dropPathMode
                    + ") must be BATCH_SUBSET, DROP_PATH, LAYER_DROP or AUTO", e);
        }
        if (corpus != null) {
            int n = seqLen != null ? seqLen : 256;
            TextCorpus text = TextCorpus.read(corpus, n, null);
            return new ModelConfig(ModelConfig.TEXT, n, text.vocabSize(), text.numClasses(), dim, depth, heads,
                    dimHead, lightWindow, heavyQ != null ? heavyQ : 8, heavyKv, 1, heavyFf, routerEps, cosineRouting,
                    routerNoise, zeroHeavyInit, dropPathRate, mode, dropout, rate, 0, 0, 0,
                    corpus.toAbsolutePath().toString(), text.alphabet());
        }
        int n = seqLen != null ? seqLen : 512;
        RetrievalTask retrieval = new RetrievalTask(n, pairs, keys, values, lightWindow);
        return new ModelConfig(ModelConfig.RETRIEVAL, n, retrieval.vocabSize(), retrieval.numClasses(), dim, depth,
                heads, dimHead, lightWindow, heavyQ != null ? heavyQ : 32, heavyKv, kvRoutes, heavyFf, routerEps,
                cosineRouting, routerNoise, zeroHeavyInit, dropPathRate, mode, dropout, rate, pairs, keys, values,
                null, null);
    }
}
