package dev.condjl.integration.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import com.google.gson.Gson;

import dev.condjl.cuda.CondjlOps;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * {@code condjl bench top-k}: the tie-broken top-k of {@link CondjlOps#topKByInput} against DJL's {@code topK} (which
 * breaks no ties), on (rows, n) scores with k = n / {@code --k-share} per row. One JSON line per (n, implementation):
 * {@code ms}, the median of {@code --reps} calls each followed by reading a value (the GPU's time where the GPU is the
 * slower side), and {@code host_ms}, the mean time per call of {@code --reps} calls made back to back without reading
 * anything (on a GPU, what one call costs the host: its checks, allocations and launches).
 */
@Command(
        name = "top-k",
        mixinStandardHelpOptions = true,
        description = "Times the tie-broken top-k (condjl's native one) against DJL's topK; one JSON line each.")
public final class TopKBench implements Callable<Integer> {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--rows", defaultValue = "3", description = "Rows (default: ${DEFAULT-VALUE}, three routers).")
    long rows;

    @Option(names = "--seq", split = ",", defaultValue = "256,1024,4096,16384,65536",
            description = "Entries per row, comma-separated (default: ${DEFAULT-VALUE}).")
    List<Long> seq;

    @Option(names = "--k-share", defaultValue = "8", description = "k = n / this (default: ${DEFAULT-VALUE}).")
    long kShare;

    @Mixin BenchDevice device = new BenchDevice();

    @Mixin BenchThreads threads = new BenchThreads();

    @Mixin BenchRepeats repeats = new BenchRepeats(5, 0, 20);

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        repeats.validate();
        threads.apply();
        if (rows < 1 || kShare < 1 || seq.stream().anyMatch(n -> n < kShare)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--rows (" + rows + ") and --k-share ("
                    + kShare + ") must be >= 1 and every --seq " + seq + " at least --k-share");
        }
        Device device = this.device.device();
        Gson gson = new Gson();
        for (long n : seq) {
            int k = Math.toIntExact(n / kShare);
            try (NDManager manager = NDManager.newBaseManager(device)) {
                NDArray scores = manager.randomUniform(0, 1, new Shape(rows, n));
                NDArray raw = manager.randomNormal(new Shape(rows, n));
                List<Impl> impls = new ArrayList<>();
                if (CondjlOps.supportsTopKByInput(scores)) {
                    impls.add(new Impl("condjl", () -> CondjlOps.topKByInput(scores, raw, null, k)));
                }
                impls.add(new Impl("djl-topK", () -> scores.topK(k, -1).get(1)));
                for (Impl impl : impls) {
                    Map<String, Object> line = new LinkedHashMap<>();
                    line.put("impl", impl.name());
                    line.put("device", device.toString());
                    line.put("rows", rows);
                    line.put("n", n);
                    line.put("k", k);
                    double ms = repeats.medianMillis(scores, step -> impl.call().getLong(0, 0));
                    line.put("ms", BenchRepeats.roundToMicros(ms));
                    line.put("host_ms", BenchRepeats.roundToMicros(hostMillis(scores, impl)));
                    spec.commandLine().getOut().println(gson.toJson(line));
                    spec.commandLine().getOut().flush();
                }
            }
        }
        return 0;
    }

    /** Mean milliseconds per call of {@code --reps} calls queued back to back, then one read to drain them. */
    private double hostMillis(NDArray scores, Impl impl) {
        try (NDManager step = scores.getManager().newSubManager()) {
            scores.tempAttach(step);
            NDArray last = null;
            long start = System.nanoTime();
            for (int i = 0; i < repeats.reps; i++) {
                last = impl.call();
            }
            double millis = (System.nanoTime() - start) / 1e6 / repeats.reps;
            last.getLong(0, 0);
            return millis;
        }
    }

    /** One timed implementation: a call returns the (rows, k) indices. */
    private record Impl(String name, Supplier<NDArray> indices) {
        NDArray call() {
            return indices.get();
        }
    }
}
