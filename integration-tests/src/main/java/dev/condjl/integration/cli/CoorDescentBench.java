package dev.condjl.integration.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import com.google.gson.Gson;

import dev.condjl.cuda.CondjlOps;
import dev.condjl.topk.Backend;
import dev.condjl.topk.CoordinateDescent;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * {@code condjl bench coor-descent}: forward and forward+backward time of {@link CoordinateDescent#solve} on
 * {@code --device} (default: the engine's default device), one JSON line per (case, implementation) with the median
 * of {@code --reps} runs after {@code --warmup} runs.
 */
@Command(
        name = "coor-descent",
        mixinStandardHelpOptions = true,
        description = {
            "Times coordinate descent (the CoLT5 router's soft top-k); prints one JSON line per case and impl.",
            "Without --rows/--n/--k runs 2x32768 k1024, 16x4096 k512 and 256x2048 k256."
        })
public final class CoorDescentBench implements Callable<Integer> {

    /** Benchmarked implementations; a new backend registers here with a check of whether it can run. */
    static final List<Impl> IMPLS = List.of(
            new Impl("unrolled", Backend.UNROLLED, d -> true),
            new Impl("fused", Backend.FUSED, CondjlOps::supports),
            new Impl("auto", Backend.AUTO, d -> true));

    private static final long[][] DEFAULT_CASES = {{2, 32768, 1024}, {16, 4096, 512}, {256, 2048, 256}};

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--rows", description = "Rows (default: the three default cases, or 16 with --n/--k).")
    Long rows;

    @Option(names = "--n", description = "Entries per row (default: 4096 with --rows/--k).")
    Long n;

    @Option(names = "--k", description = "k per row (default: 512 with --rows/--n).")
    Long k;

    @Option(names = "--iters", defaultValue = "20", description = "Iterations (default: ${DEFAULT-VALUE}).")
    int iters;

    @Option(names = "--eps", defaultValue = "0.03", description = "Final eps (default: ${DEFAULT-VALUE}).")
    double eps;

    @Option(names = "--eps-init", defaultValue = "4", description = "Initial eps (default: ${DEFAULT-VALUE}).")
    double epsInit;

    @Option(names = "--eps-decay", defaultValue = "0.7", description = "Eps decay (default: ${DEFAULT-VALUE}).")
    double epsDecay;

    @Option(names = "--impl", split = ",", description = "Implementations (default: every available one).")
    List<String> impls;

    @Mixin BenchDevice device = new BenchDevice();

    @Mixin BenchThreads threads = new BenchThreads();

    @Mixin BenchRepeats repeats = new BenchRepeats(5, 0, 10);

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        repeats.validate();
        threads.apply();
        CoordinateDescent.Options.Builder builder = CoordinateDescent.Options.builder()
                .setIters(iters).optEps(eps).optEpsInit(epsInit).optEpsDecay(epsDecay);
        Device device = this.device.device();
        Gson gson = new Gson();
        for (long[] c : cases()) {
            for (Impl impl : selectedImpls(device)) {
                CoordinateDescent.Options options = builder.optBackend(impl.backend()).build();
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("impl", impl.name());
                line.put("device", device.toString());
                line.put("rows", c[0]);
                line.put("n", c[1]);
                line.put("k", c[2]);
                line.put("iters", iters);
                double[] millis = measure(device, c[0], c[1], c[2], options);
                line.put("fwd_ms", millis[0]);
                line.put("fwdbwd_ms", millis[1]);
                spec.commandLine().getOut().println(gson.toJson(line));
                spec.commandLine().getOut().flush();
            }
        }
        return 0;
    }

    private List<long[]> cases() {
        if (rows == null && n == null && k == null) {
            return Arrays.asList(DEFAULT_CASES);
        }
        long[] c = {rows == null ? 16 : rows, n == null ? 4096 : n, k == null ? 512 : k};
        if (c[0] < 1 || c[1] < 1 || c[2] < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--rows, --n and --k must be >= 1, got " + Arrays.toString(c));
        }
        return List.<long[]>of(c);
    }

    private List<Impl> selectedImpls(Device device) {
        if (impls == null) {
            return IMPLS.stream().filter(i -> i.available().test(device)).collect(Collectors.toList());
        }
        List<Impl> selected = new ArrayList<>();
        for (String name : impls) {
            Impl impl = IMPLS.stream().filter(i -> i.name().equals(name)).findFirst()
                    .orElseThrow(() -> new CommandLine.ParameterException(spec.commandLine(), "unknown --impl " + name
                            + " (known: " + IMPLS.stream().map(Impl::name).collect(Collectors.joining(", ")) + ")"));
            if (!impl.available().test(device)) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--impl " + name + " is not available on " + device);
            }
            selected.add(impl);
        }
        return selected;
    }

    /** Returns the median forward and forward+backward milliseconds. */
    private double[] measure(Device device, long rows, long n, long k, CoordinateDescent.Options options) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            NDArray s = manager.randomNormal(new Shape(rows, n));
            NDArray gradOutput = manager.randomNormal(new Shape(rows, n));
            double forward = repeats.medianMillis(s, step -> {
                // Reading one value waits for asynchronous devices.
                CoordinateDescent.solve(s, k, null, options).sum().getFloat();
            });
            s.setRequiresGradient(true);
            double backward = repeats.medianMillis(s, step -> {
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    collector.backward(CoordinateDescent.solve(s, k, null, options).mul(gradOutput).sum());
                }
                s.getGradient().sum().getFloat();
            });
            return new double[] {BenchRepeats.roundToMicros(forward), BenchRepeats.roundToMicros(backward)};
        }
    }

    /**
     * One benchmarked implementation.
     *
     * @param name the {@code --impl} name and the {@code impl} field
     * @param backend the backend passed to {@link CoordinateDescent}
     * @param available whether it can run on a device of the current engine
     */
    record Impl(String name, Backend backend, Predicate<Device> available) {}
}
