package dev.condjl.integration.cli;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import com.google.gson.Gson;

import dev.condjl.colt5.ConditionalRoutedTransformerBlock;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code condjl bench colt5}: forward+backward time of a {@link ConditionalRoutedTransformerBlock} (heavy tokens
 * n/8 for queries, keys/values and the feed-forward, light window 128) against DJL's dense
 * {@link TransformerEncoderBlock} of the same width, heads and feed-forward size (4·dim), one JSON line per
 * (model, n) with the median of {@code --reps} runs after {@code --warmup}, then a line with the ratios.
 *
 * <p>On a shared machine run it with {@code OMP_WAIT_POLICY=PASSIVE}: with libtorch's default busy-waiting OpenMP
 * threads, a machine loaded beyond its cores makes every small op wait for a descheduled thread, which slows the
 * routed block (many small ops) far more than the dense one (few large ones).
 */
@Command(
        name = "colt5",
        mixinStandardHelpOptions = true,
        description = {
            "Times forward+backward of the CoLT5 routed transformer block and of DJL's dense"
                + " TransformerEncoderBlock; prints one JSON line per model and sequence length."
        })
public final class Colt5Bench implements Callable<Integer> {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--dim", defaultValue = "256", description = "Model width (default: ${DEFAULT-VALUE}).")
    int dim;

    @Option(names = "--seq", split = ",", defaultValue = "1024,2048,4096,8192",
            description = "Sequence lengths (default: ${DEFAULT-VALUE}).")
    List<Integer> seq;

    @Option(names = "--heads", defaultValue = "8", description = "Heads of every attention (default: ${DEFAULT-VALUE}).")
    int heads;

    @Option(names = "--heavy-fraction", defaultValue = "8",
            description = "Route n / this many tokens to each heavy branch (default: ${DEFAULT-VALUE}).")
    int heavyFraction;

    @Option(names = "--window", defaultValue = "128", description = "Light attention window (default: ${DEFAULT-VALUE}).")
    int window;

    @Option(names = "--batch", defaultValue = "1", description = "Batch size (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--models", split = ",", defaultValue = "routed,dense",
            description = "Which models to time: routed, dense (default: ${DEFAULT-VALUE}).")
    List<String> models;

    @Option(names = "--warmup", defaultValue = "2", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--reps", defaultValue = "5", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int reps;

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        if (dim % heads != 0 || reps < 1 || warmup < 0 || heavyFraction < 1 || batch < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "need dim % heads == 0, reps >= 1, "
                    + "warmup >= 0, heavy-fraction >= 1 and batch >= 1");
        }
        for (String m : models) {
            if (!m.equals("routed") && !m.equals("dense")) {
                throw new CommandLine.ParameterException(spec.commandLine(), "unknown model " + m);
            }
        }
        Gson gson = new Gson();
        for (int n : seq) {
            Map<String, Double> millis = new LinkedHashMap<>();
            for (String model : models) {
                int heavy = Math.max(1, n / heavyFraction);
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("model", model.equals("routed") ? "ConditionalRoutedTransformerBlock"
                        : "TransformerEncoderBlock");
                line.put("device", Engine.getInstance().defaultDevice().toString());
                line.put("threads", System.getProperty("ai.djl.pytorch.num_threads", "default"));
                // with OpenMP's default busy-waiting, a machine busier than its cores slows small ops many-fold
                line.put("omp_wait_policy", System.getenv().getOrDefault("OMP_WAIT_POLICY", "default"));
                line.put("batch", batch);
                line.put("dim", dim);
                line.put("heads", heads);
                line.put("n", n);
                if (model.equals("routed")) {
                    line.put("heavy_tokens", heavy);
                    line.put("light_window", window);
                }
                double ms = measure(model, n, heavy);
                line.put("fwdbwd_ms", ms);
                millis.put(model, ms);
                print(gson, line);
            }
            if (millis.size() == 2) {
                Map<String, Object> ratio = new LinkedHashMap<>();
                ratio.put("n", n);
                ratio.put("routed_over_dense", Math.round(millis.get("routed") / millis.get("dense") * 1e4) / 1e4);
                print(gson, ratio);
            }
        }
        return 0;
    }

    private void print(Gson gson, Map<String, Object> line) {
        spec.commandLine().getOut().println(gson.toJson(line));
        spec.commandLine().getOut().flush();
    }

    private Block build(String model, int heavy) {
        if (model.equals("dense")) {
            return new TransformerEncoderBlock(dim, heads, 4 * dim, 0f, Activation::gelu);
        }
        return ConditionalRoutedTransformerBlock.builder()
                .setDim(dim)
                .setNumHeavyAttnTokensQ(heavy)
                .setNumHeavyAttnTokensKv(heavy)
                .setNumHeavyFfTokens(heavy)
                .optLightWindowSize(window)
                .optLightHeads(heads)
                .optLightDimHead(dim / heads)
                .optHeavyHeads(heads)
                .optHeavyDimHead(dim / heads)
                .build();
    }

    /** Median forward+backward milliseconds; every run's arrays are freed. */
    private double measure(String model, int n, int heavy) {
        try (NDManager manager = NDManager.newBaseManager()) {
            Block block = build(model, heavy);
            Shape shape = new Shape(batch, n, dim);
            block.initialize(manager, DataType.FLOAT32, shape);
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray x = manager.randomNormal(shape);
            double[] times = new double[reps];
            for (int i = -warmup; i < reps; i++) {
                try (NDManager step = manager.newSubManager()) {
                    x.tempAttach(step);
                    long start = System.nanoTime();
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray out = block.forward(ps, new NDList(x), true).head();
                        gc.backward(out.mean());
                    }
                    if (i >= 0) {
                        times[i] = (System.nanoTime() - start) / 1e6;
                    }
                }
            }
            Arrays.sort(times);
            double median = reps % 2 == 1 ? times[reps / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
            return Math.round(median * 10) / 10.0;
        }
    }
}
