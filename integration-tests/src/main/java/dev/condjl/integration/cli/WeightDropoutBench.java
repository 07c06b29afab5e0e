package dev.condjl.integration.cli;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import com.google.gson.JsonObject;

import dev.condjl.dropout.Parametrization;
import dev.condjl.dropout.Parametrized;
import dev.condjl.dropout.VariationalNoise;
import dev.condjl.dropout.WeightDropout;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code condjl bench weight-dropout}: memory a parametrized {@code Linear(dim → dim)} holds from forward to backward
 * with variational noise, weight dropout and both, against the plain layer (spec §3.3, §3.7).
 *
 * <p>Method: resident set size ({@code VmRSS}) after the training forward minus before it, median over repeats,
 * minus the same for the plain layer. The process re-executes itself once with {@code MALLOC_MMAP_THRESHOLD_} fixed,
 * so every tensor of 128 KiB or more is its own mapping and returns to the OS when freed.
 */
@Command(
        name = "weight-dropout",
        mixinStandardHelpOptions = true,
        description = "Extra memory held from forward to backward per parametrized Linear (noise, dropout, both);"
                + " one JSON line per case, then a table.")
public final class WeightDropoutBench implements Callable<Integer> {

    private static final String MMAP_THRESHOLD = "131072";

    @Option(names = "--dim", defaultValue = "2048", description = "weight is dim x dim fp32 (default ${DEFAULT-VALUE})")
    int dim;

    @Option(names = "--batch", defaultValue = "64", description = "rows of the input (default ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--repeats", defaultValue = "5",
            description = "forward/backward per case (default ${DEFAULT-VALUE})")
    int repeats;

    @Option(names = "--sigma", defaultValue = "0.075", description = "noise std (default ${DEFAULT-VALUE})")
    float sigma;

    @Option(names = "--rate", defaultValue = "0.5", description = "weight dropout rate (default ${DEFAULT-VALUE})")
    float rate;

    @Option(names = "--child", hidden = true, description = "measure in this process")
    boolean child;

    /** {@inheritDoc} */
    @Override
    public Integer call() throws IOException, InterruptedException {
        if (dim <= 0 || batch <= 0 || repeats <= 0) {
            throw new IllegalArgumentException(String.format(
                    Locale.ROOT, "dim (%d), batch (%d) and repeats (%d) must be > 0", dim, batch, repeats));
        }
        if (!child) {
            return relaunch();
        }
        Map<String, List<Parametrization>> cases = new LinkedHashMap<>();
        cases.put("plain", List.of());
        cases.put("noise", List.of(new VariationalNoise(sigma)));
        cases.put("dropout", List.of(new WeightDropout(rate)));
        cases.put("noise+dropout", List.of(new VariationalNoise(sigma), new WeightDropout(rate)));
        double elementsMib = (double) dim * dim / (1 << 20);
        Map<String, Double> expectedMib = Map.of("plain", 0.0, "noise", 4 * elementsMib, "dropout",
                5 * elementsMib, "noise+dropout", 5 * elementsMib);
        Map<String, double[]> results = new LinkedHashMap<>();
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear linear = Linear.builder().setUnits(dim).optBias(false).build();
            linear.initialize(manager, DataType.FLOAT32, new Shape(batch, dim));
            for (Map.Entry<String, List<Parametrization>> c : cases.entrySet()) {
                Parametrized block = Parametrized.wrap(linear);
                c.getValue().forEach(p -> block.register("weight", p));
                results.put(c.getKey(), measure(block, manager));
            }
        }
        double plainHeld = results.get("plain")[0];
        List<String> rows = new ArrayList<>(List.of(
                "| case | extra held forward→backward vs plain (MiB) | expected (MiB) | ms fwd+bwd |",
                "|---|---|---|---|"));
        for (Map.Entry<String, double[]> r : results.entrySet()) {
            double extra = r.getValue()[0] - plainHeld;
            JsonObject json = new JsonObject();
            json.addProperty("bench", "weight-dropout");
            json.addProperty("case", r.getKey());
            json.addProperty("dim", dim);
            json.addProperty("batch", batch);
            json.addProperty("weight_mib", round(4 * elementsMib));
            json.addProperty("held_mib", round(r.getValue()[0]));
            json.addProperty("extra_held_mib", round(extra));
            json.addProperty("expected_extra_mib", round(expectedMib.get(r.getKey())));
            json.addProperty("ms_median", round(r.getValue()[1]));
            json.addProperty("memory", "median VmRSS(after forward) - VmRSS(before forward), MALLOC_MMAP_THRESHOLD_="
                    + MMAP_THRESHOLD);
            System.out.println(json);
            rows.add(String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f |", r.getKey(), extra,
                    expectedMib.get(r.getKey()), r.getValue()[1]));
        }
        rows.forEach(System.out::println);
        return 0;
    }

    /** Returns {median MiB held after forward, median ms of forward+backward}. */
    private double[] measure(Block block, NDManager manager) {
        ParameterStore store = new ParameterStore(manager, false);
        double[] held = new double[repeats + 1];
        double[] ms = new double[repeats + 1];
        for (int r = 0; r <= repeats; r++) { // repeat 0 warms up (and allocates the weight's gradient)
            try (NDManager step = manager.newSubManager()) {
                NDArray x = step.randomNormal(new Shape(batch, dim));
                long t0 = System.nanoTime();
                double before = ResidentMemory.currentMib();
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray y = block.forward(store, new NDList(x), true).head();
                    held[r] = ResidentMemory.currentMib() - before;
                    collector.backward(y.sum());
                }
                ms[r] = (System.nanoTime() - t0) / 1e6;
            }
        }
        return new double[] {median(held), median(ms)};
    }

    private static double median(double[] withWarmup) {
        double[] v = Arrays.copyOfRange(withWarmup, 1, withWarmup.length);
        Arrays.sort(v);
        return v[v.length / 2];
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private int relaunch() throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), Condjl.class.getName(),
                "bench", "weight-dropout", "--child",
                "--dim", Integer.toString(dim), "--batch", Integer.toString(batch),
                "--repeats", Integer.toString(repeats), "--sigma", Float.toString(sigma),
                "--rate", Float.toString(rate)));
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().put("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD);
        return pb.start().waitFor();
    }
}
