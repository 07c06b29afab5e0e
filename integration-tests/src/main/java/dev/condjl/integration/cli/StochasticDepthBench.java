package dev.condjl.integration.cli;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import dev.condjl.stochastic.StochasticDepthMode;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code condjl bench stochastic-depth}: forward+backward time and peak resident memory of a
 * pre-norm ViT-like stack ({@link VitStack}) on CPU with plain residuals, DropPath and batch-subset
 * stochastic depth. Each mode runs in a fresh child JVM (same java and classpath) that reports its
 * own peak resident set size ({@code VmHWM}), so modes cannot inherit each other's allocations.
 */
@Command(
        name = "stochastic-depth",
        mixinStandardHelpOptions = true,
        description = {
            "Forward+backward of a pre-norm ViT-like stack on CPU without drop, with DropPath and"
                + " with batch-subset stochastic depth; one JSON line per mode, then a summary.",
            "Memory: each mode runs in a fresh child JVM that reports its peak resident size"
                    + " (VmHWM from /proc/self/status)."
        })
public final class StochasticDepthBench implements Callable<Integer> {

    private static final Logger LOGGER = LogManager.getLogger(StochasticDepthBench.class);
    private static final String MEMORY_METHOD =
            "VmHWM (peak resident set) of a fresh child JVM per mode, from /proc/self/status";

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--layers",
            defaultValue = "12",
            description = "blocks (default ${DEFAULT-VALUE})")
    int layers;

    @Option(
            names = "--dim",
            defaultValue = "384",
            description = "embedding size (default ${DEFAULT-VALUE})")
    int dim;

    @Option(
            names = "--heads",
            defaultValue = "6",
            description = "attention heads (default ${DEFAULT-VALUE})")
    int heads;

    @Option(
            names = "--batch",
            defaultValue = "64",
            description = "batch size (default ${DEFAULT-VALUE})")
    int batch;

    @Option(
            names = "--tokens",
            defaultValue = "197",
            description = "tokens per sample (default ${DEFAULT-VALUE})")
    int tokens;

    @Option(
            names = "--steps",
            defaultValue = "3",
            description = "timed steps (default ${DEFAULT-VALUE})")
    int steps;

    @Option(
            names = "--warmup",
            defaultValue = "1",
            description = "untimed steps first (default ${DEFAULT-VALUE})")
    int warmup;

    @Option(
            names = "--drop-prob",
            defaultValue = "0.4",
            description = "p of every branch (default ${DEFAULT-VALUE})")
    double dropProb;

    @Option(
            names = "--modes",
            split = ",",
            defaultValue = "none,drop-path,batch-subset",
            description =
                    "modes to run: none, drop-path, batch-subset, layer-drop, auto (default"
                        + " ${DEFAULT-VALUE})")
    List<String> modes;

    /** The children's threads. */
    @Mixin BenchThreads threads = new BenchThreads();

    @Option(
            names = "--malloc-mmap-threshold",
            defaultValue = "131072",
            description =
                    "MALLOC_MMAP_THRESHOLD_ for the children so freed tensors leave the resident"
                        + " set; 0 keeps glibc's default (default ${DEFAULT-VALUE})")
    long mallocMmapThreshold;

    @Option(
            names = "--seed",
            defaultValue = "0",
            description = "Engine.setRandomSeed (default ${DEFAULT-VALUE})")
    int seed;

    @Option(
            names = "--child",
            hidden = true,
            description = "internal: measure one mode in this JVM")
    String child;

    /** {@inheritDoc} */
    @Override
    public Integer call() throws IOException, InterruptedException {
        validate();
        if (child != null) {
            System.out.println(new Gson().toJson(measure(child)));
            return 0;
        }
        Map<String, JsonObject> results = new LinkedHashMap<>();
        for (String mode : modes) {
            JsonObject result = runInFreshJvm(mode);
            System.out.println(new Gson().toJson(result));
            System.out.flush();
            results.put(mode, result);
        }
        if (results.containsKey("none") && results.containsKey("batch-subset")) {
            System.out.println(new Gson().toJson(summary(results)));
        }
        return 0;
    }

    private void validate() {
        if (layers < 1
                || dim < 1
                || heads < 1
                || batch < 1
                || tokens < 1
                || steps < 1
                || warmup < 0) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    "layers, dim, heads, batch, tokens and steps must be >= 1, warmup >= 0");
        }
        if (dim % heads != 0) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "heads (" + heads + ") must divide dim (" + dim + ")");
        }
        if (!(dropProb >= 0 && dropProb <= 1)) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(), "drop-prob (" + dropProb + ") must be in [0, 1]");
        }
        for (String mode : child == null ? modes : List.of(child)) {
            modeOf(mode);
        }
    }

    /** {@code none} is the plain residual; other names are {@link StochasticDepthMode}s. */
    private StochasticDepthMode modeOf(String name) {
        if ("none".equals(name)) {
            return null;
        }
        try {
            return StochasticDepthMode.valueOf(name.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(
                    spec.commandLine(),
                    "unknown mode '"
                            + name
                            + "'; use none, drop-path, batch-subset, layer-drop or auto");
        }
    }

    private JsonObject runInFreshJvm(String mode) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(Arrays.asList("-Xmx1g", "-Dai.djl.offline=true", "-DdisableProgressBar=true"));
        if (threads.threads != null) {
            cmd.add("-D" + BenchThreads.PROPERTY + "=" + threads.threads);
        }
        cmd.addAll(
                Arrays.asList(
                        "-cp", System.getProperty("java.class.path"), Condjl.class.getName()));
        cmd.addAll(Arrays.asList("bench", spec.name(), "--child", mode));
        cmd.addAll(
                Arrays.asList(
                        "--layers",
                        str(layers),
                        "--dim",
                        str(dim),
                        "--heads",
                        str(heads),
                        "--batch",
                        str(batch),
                        "--tokens",
                        str(tokens),
                        "--steps",
                        str(steps),
                        "--warmup",
                        str(warmup),
                        "--drop-prob",
                        Double.toString(dropProb),
                        "--seed",
                        str(seed),
                        "--malloc-mmap-threshold",
                        Long.toString(mallocMmapThreshold)));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT);
        if (mallocMmapThreshold > 0) {
            pb.environment().put("MALLOC_MMAP_THRESHOLD_", Long.toString(mallocMmapThreshold));
        }
        LOGGER.info("mode {}: starting a fresh JVM", mode);
        Process process = pb.start();
        JsonObject result = null;
        try (BufferedReader out =
                new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                if (line.startsWith("{")) {
                    result = JsonParser.parseString(line).getAsJsonObject();
                } else {
                    System.err.println(line);
                }
            }
        }
        int rc = process.waitFor();
        if (rc != 0 || result == null) {
            throw new IllegalStateException(
                    "child JVM for mode " + mode + " failed (exit code " + rc + ")");
        }
        return result;
    }

    private static String str(int v) {
        return Integer.toString(v);
    }

    /** Runs in the child JVM: builds the stack and times warmup + steps forward+backward passes. */
    private JsonObject measure(String mode) {
        StochasticDepthMode m = modeOf(mode);
        double p = m == null ? 0 : dropProb;
        Engine.getInstance().setRandomSeed(seed);
        Block stack =
                VitStack.build(layers, dim, heads, m == null ? StochasticDepthMode.AUTO : m, p);
        Shape shape = new Shape(batch, tokens, dim);
        double[] ms = new double[steps];
        double baselineMib;
        try (NDManager manager = NDManager.newBaseManager()) {
            stack.initialize(manager, DataType.FLOAT32, shape);
            ParameterStore ps = new ParameterStore(manager, false);
            baselineMib = ResidentMemory.currentMib();
            for (int s = 0; s < warmup + steps; s++) {
                try (NDManager stepManager = manager.newSubManager()) {
                    NDArray x = stepManager.randomNormal(shape);
                    long t0 = System.nanoTime();
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray y = stack.forward(ps, new NDList(x), true).head();
                        gc.backward(y.square().mean());
                    }
                    double elapsed = (System.nanoTime() - t0) / 1e6;
                    if (s >= warmup) {
                        ms[s - warmup] = elapsed;
                    }
                    LOGGER.info("mode {} step {}: {} ms", mode, s, Math.round(elapsed));
                }
            }
        }
        double peakMib = ResidentMemory.peakMib();
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        JsonObject r = new JsonObject();
        r.addProperty("bench", "stochastic-depth");
        r.addProperty("mode", mode);
        r.addProperty("p", p);
        r.addProperty("layers", layers);
        r.addProperty("dim", dim);
        r.addProperty("heads", heads);
        r.addProperty("batch", batch);
        r.addProperty("tokens", tokens);
        r.addProperty("steps", steps);
        r.addProperty("warmup", warmup);
        r.addProperty("torch_threads", JniUtils.getNumThreads());
        double median = (sorted[(steps - 1) / 2] + sorted[steps / 2]) / 2;
        r.addProperty("ms_median", round(median));
        r.addProperty("ms_mean", round(Arrays.stream(ms).average().orElse(Double.NaN)));
        r.addProperty("ms_min", round(sorted[0]));
        r.addProperty("peak_rss_mib", round(peakMib));
        r.addProperty("baseline_rss_mib", round(baselineMib));
        r.addProperty("peak_extra_mib", round(peakMib - baselineMib));
        r.addProperty(
                "malloc_mmap_threshold",
                mallocMmapThreshold > 0 ? Long.toString(mallocMmapThreshold) : "glibc default");
        r.addProperty("memory", MEMORY_METHOD);
        return r;
    }

    private static JsonObject summary(Map<String, JsonObject> results) {
        JsonObject none = results.get("none");
        JsonObject subset = results.get("batch-subset");
        double peakCut = 1 - num(subset, "peak_rss_mib") / num(none, "peak_rss_mib");
        double extraCut = 1 - num(subset, "peak_extra_mib") / num(none, "peak_extra_mib");
        JsonObject s = new JsonObject();
        s.addProperty("bench", "stochastic-depth");
        s.addProperty("summary", "batch-subset vs none (memory) and vs drop-path (time)");
        s.addProperty("peak_rss_reduction_vs_none_pct", round(100 * peakCut));
        s.addProperty("peak_extra_reduction_vs_none_pct", round(100 * extraCut));
        s.addProperty("memory_target_met", peakCut >= 0.30);
        JsonObject dropPath = results.get("drop-path");
        if (dropPath != null) {
            double ratio = num(subset, "ms_median") / num(dropPath, "ms_median");
            s.addProperty("median_time_vs_drop_path", Math.round(ratio * 1000) / 1000.0);
            s.addProperty("speed_target_met", ratio < 1);
        }
        s.addProperty(
                "timing_note",
                "wall-clock on a CPU that other processes may share; compare medians");
        return s;
    }

    private static double num(JsonObject o, String key) {
        return o.get(key).getAsDouble();
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }
}
