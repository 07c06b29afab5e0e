package dev.condjl.integration.cli;

import ai.djl.Device;
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
import dev.condjl.cuda.AttentionPrecision;
import dev.condjl.cuda.CudaGraph;
import dev.condjl.cuda.GraphCaptureException;
import dev.condjl.cuda.MatrixProducts;
import dev.condjl.integration.profile.OpProfile;
import dev.condjl.integration.profile.StackSamples;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code condjl bench colt5}: forward+backward time of a {@link ConditionalRoutedTransformerBlock} (heavy tokens
 * n/8 for queries, keys/values and the feed-forward, light window 128) against DJL's dense
 * {@link TransformerEncoderBlock} of the same width, heads and feed-forward size (4·dim): the median of
 * {@code --reps} runs after {@code --warmup} runs and at least {@code --warmup-seconds} (5 s by default: the block's
 * Java code is then compiled, as in a training run past its first steps), as a table with one row per sequence
 * length, and with {@code --json} one JSON line per (model, n) plus one with the ratio. A JSON line also has
 * {@code host_ms}, the median time until the backward returned (what the run costs the host; near {@code fwdbwd_ms}
 * where the host sets the pace), and {@code warmup_runs}.
 *
 * <p>Every run ends by reading one value of a parameter's gradient, which waits for the device, so GPU times
 * include all the queued work. A model that runs out of memory (dense attention at long n) is shown as such.
 *
 * <p>With {@code --cuda-graph} (a GPU) each model's forward+backward is captured once in a {@link CudaGraph} and the
 * timed runs are its replays, which cost the host microseconds: the times are then the GPU's. A model that cannot be
 * captured (DJL's dense block multiplies by a Java number, which DJL copies to the device) is timed eagerly and named
 * under the table.
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
                + " TransformerEncoderBlock; prints a table with one row per sequence length."
        })
public final class Colt5Bench implements Callable<Integer> {

    static final String OUT_OF_MEMORY = "out of memory";

    /** The library's packages, whose methods {@code --sample-stacks} counts inclusively. */
    private static final List<String> LIBRARY_PACKAGES = List.of("dev.condjl.colt5.", "dev.condjl.topk.",
            "dev.condjl.cuda.");

    private static final Map<String, String> MODEL_NAMES = Map.of(
            "routed", "ConditionalRoutedTransformerBlock", "dense", "TransformerEncoderBlock");

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** With {@code --cuda-graph}: the models whose capture failed (timed eagerly), with the first line of why. */
    private final Map<String, String> uncapturable = new LinkedHashMap<>();

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

    @Option(names = "--no-dense", description = "Skip the dense block (its attention runs out of memory at long n).")
    boolean noDense;

    @Option(names = "--attention-precision", paramLabel = "P", defaultValue = "INPUT",
            description = "The routed block's fused attention: INPUT (float32), FLOAT16 or BFLOAT16 (default:"
                + " ${DEFAULT-VALUE}; the dense block stays float32).")
    AttentionPrecision attentionPrecision;

    @Option(names = "--tf32", description = "Allow TF32 in float32 matrix products on CUDA, both blocks"
            + " (MatrixProducts.setTf32; restored afterwards).")
    boolean tf32;

    @Option(names = "--cuda-graph", description = "Capture each model's forward+backward once in a CUDA graph"
            + " (CudaGraph, after 3 eager runs) and time its replays: the GPU's time without the host's cost per op.")
    boolean cudaGraph;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write one JSON line per model and n here.")
    Path json;

    @Option(names = "--profile", paramLabel = "FILE",
            description = "After timing, profile one routed forward+backward per n: chrome trace FILE (FILE-n.json"
                + " with several n) and a line of top-level op and autograd node counts.")
    Path profile;

    @Option(names = "--sample-stacks", description = "After timing, run the routed block --reps more times per n"
            + " (after the same warm-up) while sampling this thread's stack every 200 µs, and print where the host's"
            + " time went: the most frequent top frames (a JNI call is a libtorch or condjl op) and condjl methods.")
    boolean sampleStacks;

    @Mixin BenchDevice device = new BenchDevice();

    @Mixin BenchThreads threads = new BenchThreads();

    @Mixin BenchRepeats repeats = new BenchRepeats(2, 5, 5);

    /** {@inheritDoc} */
    @Override
    public Integer call() throws IOException {
        repeats.validate();
        if (dim % heads != 0 || heavyFraction < 1 || batch < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "need dim % heads == 0, "
                    + "heavy-fraction >= 1 and batch >= 1");
        }
        for (String m : models) {
            if (!MODEL_NAMES.containsKey(m)) {
                throw new CommandLine.ParameterException(spec.commandLine(), "unknown model " + m);
            }
        }
        if (cudaGraph && (profile != null || sampleStacks)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--profile and --sample-stacks time eager"
                    + " runs; leave out --cuda-graph");
        }
        if (timedModels().isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "no model left to time");
        }
        threads.apply();
        Device dev = device.device();
        if (cudaGraph && !CudaGraph.unavailableReason(dev).isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--cuda-graph: "
                    + CudaGraph.unavailableReason(dev));
        }
        if (!tf32) {
            return run(dev);
        }
        String reason = MatrixProducts.tf32UnavailableReason();
        if (!reason.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--tf32: " + reason);
        }
        boolean before = MatrixProducts.tf32();
        MatrixProducts.setTf32(true);
        try {
            return run(dev);
        } finally {
            MatrixProducts.setTf32(before);
        }
    }

    private int run(Device dev) throws IOException {
        List<String> timed = timedModels();
        String matrixProducts = matrixProducts();
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "condjl bench colt5 on %s (threads %s, OMP_WAIT_POLICY %s): batch %d, dim %d, %d heads,"
                        + " light window %d, n/%d routed tokens per heavy branch, routed attention in %s, matrix"
                        + " products in %s; forward+backward ms%s, median of %d after at least %d warm-up runs and %s"
                        + " s, each run ending with a device synchronisation%n%n",
                dev, threads.describe(), System.getenv().getOrDefault("OMP_WAIT_POLICY", "default"), batch, dim,
                heads, window, heavyFraction, attentionPrecision, matrixProducts,
                cudaGraph ? " (replays of a CUDA graph)" : "", repeats.reps, repeats.warmup, repeats.warmupSeconds);
        out.println(tableHeader(timed));
        out.flush();
        Gson gson = new Gson();
        List<String> jsonLines = new ArrayList<>();
        for (int n : seq) {
            Map<String, Double> millis = new LinkedHashMap<>();
            for (String model : timed) {
                int heavy = Math.max(1, n / heavyFraction);
                BenchRepeats.Medians medians = measure(dev, model, n, heavy);
                millis.put(model, medians == null ? null : Math.round(medians.millis() * 100) / 100.0);
                jsonLines.add(gson.toJson(jsonLine(dev, model, n, heavy, medians, matrixProducts)));
            }
            Double ratio = ratio(millis);
            if (millis.size() == 2) {
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("n", n);
                line.put("routed_over_dense", ratio == null ? null : Math.round(ratio * 1e4) / 1e4);
                jsonLines.add(gson.toJson(line));
            }
            out.println(tableRow(n, millis));
            out.flush();
        }
        if (profile != null) {
            for (int n : seq) {
                Path file = seq.size() == 1 ? profile : profile.resolveSibling(
                        profile.getFileName().toString().replaceFirst("(\\.json)?$", "-" + n + ".json"));
                OpProfile counts = profileRouted(dev, n, Math.max(1, n / heavyFraction), file);
                out.printf(Locale.ROOT, "profile n=%d (%s): %s%n", n, file, counts.describe(12));
                out.flush();
            }
        }
        if (sampleStacks) {
            for (int n : seq) {
                StackSamples samples = sampleRouted(dev, n, Math.max(1, n / heavyFraction));
                out.printf(Locale.ROOT, "stack samples n=%d: %s", n, samples.describe(25));
                out.flush();
            }
        }
        uncapturable.forEach((model, why) -> out.printf(Locale.ROOT, "%s: not capturable in a CUDA graph (%s); timed"
                + " eagerly%n", MODEL_NAMES.get(model), why));
        if (json != null) {
            Files.write(json, jsonLines, StandardCharsets.UTF_8);
        }
        return 0;
    }

    private List<String> timedModels() {
        List<String> timed = new ArrayList<>(models);
        if (noDense) {
            timed.remove("dense");
        }
        return timed;
    }

    /** "TF32" or "float32" as libtorch has it now, "float32 (TF32 switch unknown)" where it cannot say. */
    private static String matrixProducts() {
        if (!MatrixProducts.tf32UnavailableReason().isEmpty()) {
            return "float32 (TF32 switch unknown)";
        }
        return MatrixProducts.tf32() ? "TF32" : "float32";
    }

    private Map<String, Object> jsonLine(Device dev, String model, int n, int heavy, BenchRepeats.Medians medians,
            String matrixProducts) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("model", MODEL_NAMES.get(model));
        line.put("device", dev.toString());
        line.put("threads", threads.describe());
        // with OpenMP's default busy-waiting, a machine busier than its cores slows small ops many-fold
        line.put("omp_wait_policy", System.getenv().getOrDefault("OMP_WAIT_POLICY", "default"));
        line.put("batch", batch);
        line.put("dim", dim);
        line.put("heads", heads);
        line.put("n", n);
        if (model.equals("routed")) {
            line.put("heavy_tokens", heavy);
            line.put("light_window", window);
            line.put("attention_precision", attentionPrecision.toString());
        }
        line.put("matrix_products", matrixProducts);
        line.put("cuda_graph", cudaGraph && !uncapturable.containsKey(model));
        if (uncapturable.containsKey(model)) {
            line.put("cuda_graph_error", uncapturable.get(model));
        }
        line.put("warmup", repeats.warmup);
        line.put("warmup_seconds", repeats.warmupSeconds);
        line.put("reps", repeats.reps);
        if (medians == null) {
            line.put("error", OUT_OF_MEMORY);
        } else {
            line.put("warmup_runs", medians.warmupRuns());
            line.put("fwdbwd_ms", Math.round(medians.millis() * 100) / 100.0);
            // until the backward returned: close to fwdbwd_ms where the host, not the device, sets the time
            line.put("host_ms", Math.round(medians.hostMillis() * 100) / 100.0);
        }
        return line;
    }

    /** Routed over dense, or null without both times. */
    private static Double ratio(Map<String, Double> millis) {
        Double routed = millis.get("routed");
        Double dense = millis.get("dense");
        return routed == null || dense == null ? null : routed / dense;
    }

    /**
     * The table's header and separator.
     *
     * @param models the timed models, in column order
     * @return two lines
     */
    static String tableHeader(List<String> models) {
        StringBuilder head = new StringBuilder("| n |");
        StringBuilder rule = new StringBuilder("| --- |");
        for (String m : models) {
            head.append(m.equals("routed") ? " condjl routed |" : " DJL dense TransformerEncoderBlock |");
            rule.append(" --- |");
        }
        if (models.size() == 2) {
            head.append(" routed / dense |");
            rule.append(" --- |");
        }
        return head + System.lineSeparator() + rule;
    }

    /**
     * One row of the table.
     *
     * @param n sequence length
     * @param millis median milliseconds per model in column order, null for a model that ran out of memory
     * @return the row
     */
    static String tableRow(int n, Map<String, Double> millis) {
        StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %,d |", n));
        for (Double ms : millis.values()) {
            row.append(ms == null ? " " + OUT_OF_MEMORY + " |" : String.format(Locale.ROOT, " %.2f |", ms));
        }
        if (millis.size() == 2) {
            Double ratio = ratio(millis);
            row.append(ratio == null ? " |" : String.format(Locale.ROOT, " %.3f |", ratio));
        }
        return row.toString();
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
                .optAttentionPrecision(attentionPrecision)
                .build();
    }

    /**
     * Median forward+backward milliseconds and its host part (until the backward returned, before the read that
     * waits for the device), or null if the model ran out of memory. With {@code --cuda-graph}, of the replays of a
     * graph of one forward+backward; a model that cannot be captured is timed eagerly and its reason kept in
     * {@link #uncapturable}.
     */
    private BenchRepeats.Medians measure(Device dev, String model, int n, int heavy) {
        try (NDManager manager = NDManager.newBaseManager(dev)) {
            Setup setup = setUp(manager, model, n, heavy);
            if (cudaGraph && !uncapturable.containsKey(model)) {
                try (CudaGraph graph = CudaGraph.capture(dev, 3,
                        () -> BenchRepeats.inStep(setup.x(), step -> setup.queueForwardBackward()))) {
                    return repeats.medians(setup.x(), (step, queued) -> setup.replay(graph, step, queued));
                } catch (GraphCaptureException e) {
                    if (isOutOfMemory(e)) {
                        throw e;
                    }
                    uncapturable.put(model, e.reason());
                }
            }
            return repeats.medians(setup.x(), setup::forwardBackward);
        } catch (RuntimeException | OutOfMemoryError e) {
            if (!isOutOfMemory(e)) {
                throw e;
            }
            return null;
        }
    }

    /** One profiled forward+backward of the routed block after the warm-up of the timed runs. */
    private OpProfile profileRouted(Device dev, int n, int heavy, Path file) throws IOException {
        try (NDManager manager = NDManager.newBaseManager(dev)) {
            return OpProfile.record(file, warmRouted(manager, n, heavy));
        }
    }

    /** {@code reps} routed forward+backward runs after the warm-up, with this thread's stack sampled. */
    private StackSamples sampleRouted(Device dev, int n, int heavy) {
        try (NDManager manager = NDManager.newBaseManager(dev)) {
            Runnable run = warmRouted(manager, n, heavy);
            try (StackSamples samples = StackSamples.start(Thread.currentThread(), LIBRARY_PACKAGES, 200)) {
                for (int i = 0; i < repeats.reps; i++) {
                    run.run();
                }
                return samples;
            }
        }
    }

    /**
     * The routed block and its input in {@code manager}, after the warm-up of the timed runs.
     *
     * @return one more forward+backward, in a sub-manager of its own
     */
    private Runnable warmRouted(NDManager manager, int n, int heavy) {
        Setup setup = setUp(manager, "routed", n, heavy);
        repeats.warmUp(setup.x(), step -> setup.forwardBackward(step, () -> { }));
        return () -> BenchRepeats.inStep(setup.x(), step -> setup.forwardBackward(step, () -> { }));
    }

    /** A model initialised in {@code manager} for (batch, n, dim) inputs, with a random input. */
    private Setup setUp(NDManager manager, String model, int n, int heavy) {
        Block block = build(model, heavy);
        Shape shape = new Shape(batch, n, dim);
        block.initialize(manager, DataType.FLOAT32, shape);
        return new Setup(block, new ParameterStore(manager, false), block.getParameters().valueAt(0).getArray(),
                manager.randomNormal(shape));
    }

    /**
     * A model, its parameter store, the parameter whose gradient a run reads, and the input.
     *
     * @param block the model
     * @param ps its parameter store
     * @param weight its first parameter
     * @param x the input
     */
    private record Setup(Block block, ParameterStore ps, NDArray weight, NDArray x) {

        /**
         * One forward+backward of the mean output, {@code queued} called once the backward returned, then a read of
         * one value of {@code weight}'s gradient, which waits for the device to finish the backward.
         */
        void forwardBackward(NDManager step, Runnable queued) {
            queueForwardBackward();
            queued.run();
            readGradient(step);
        }

        /** One forward+backward of the mean output, queued and not waited for (what a CUDA graph captures). */
        void queueForwardBackward() {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = block.forward(ps, new NDList(x), true).head();
                gc.backward(out.mean());
            }
        }

        /** {@link #forwardBackward} as a replay of {@code graph}, a capture of {@link #queueForwardBackward}. */
        void replay(CudaGraph graph, NDManager step, Runnable queued) {
            graph.replay();
            queued.run();
            readGradient(step);
        }

        private void readGradient(NDManager step) {
            NDArray grad = weight.getGradient();
            grad.tempAttach(step);
            grad.flatten().getFloat(0);
        }
    }

    /**
     * Whether a failure is an allocation failure: PyTorch's CUDA or CPU allocator, or the JVM heap.
     *
     * @param e the failure
     * @return true if it or a cause reports that memory ran out
     */
    static boolean isOutOfMemory(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String message = t.getMessage() == null ? "" : t.getMessage().toLowerCase(Locale.ROOT);
            if (t instanceof OutOfMemoryError || message.contains("out of memory")
                    || message.contains("can't allocate memory") || message.contains("alloc_failed")) {
                return true;
            }
        }
        return false;
    }
}
