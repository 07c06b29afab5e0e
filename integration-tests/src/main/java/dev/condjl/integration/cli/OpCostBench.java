package dev.condjl.integration.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import dev.condjl.cuda.AttentionPrecision;
import dev.condjl.cuda.CondjlOps;
import dev.condjl.cuda.FusedLinear;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Function;

/**
 * {@code condjl bench op-costs}: what one op costs the host, at the routed block's shapes ({@code x (1, n, dim)}),
 * with autograd recording as in training: per op, the median over {@code --reps} runs of {@code --calls} calls of the
 * time per call until the calls returned ({@code host}) and until a read of the input that waits for the device
 * ({@code to the sync}). On a GPU, where the two are close the op is host-bound; where the second is larger, its
 * kernel takes longer than its launch. The ops: a linear layer to {@code 3·dim} (condjl's {@link FusedLinear} where
 * it runs, and DJL's transpose and product), a matrix-vector product (a router's scores), elementwise, reduction,
 * gather and view ops on x, and the fused attention of a heavy branch ({@code (1, 8, n/8 + 1, dim/8)} queries, keys
 * and values).
 */
@Command(
        name = "op-costs",
        mixinStandardHelpOptions = true,
        description = "Times single DJL and condjl ops per call (host, and until a device synchronisation).")
public final class OpCostBench implements Callable<Integer> {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--seq", defaultValue = "4096", description = "Tokens n of x (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--dim", defaultValue = "256", description = "Width of x (default: ${DEFAULT-VALUE}).")
    int dim;

    @Option(names = "--calls", defaultValue = "100", description = "Calls per run (default: ${DEFAULT-VALUE}).")
    int calls;

    @Mixin BenchDevice device = new BenchDevice();

    @Mixin BenchThreads threads = new BenchThreads();

    @Mixin BenchRepeats repeats = new BenchRepeats(3, 2, 10);

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        repeats.validate();
        if (n < 1 || dim < 8 || dim % 8 != 0 || calls < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--seq (" + n + ") and --calls (" + calls
                    + ") must be >= 1 and --dim (" + dim + ") a positive multiple of 8");
        }
        threads.apply();
        Device dev = device.device();
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "condjl bench op-costs on %s: x (1, %d, %d), autograd recording; µs per call, median"
                + " of %d runs of %d calls%n%n| op | host | to the sync |%n| --- | --- | --- |%n", dev, n, dim,
                repeats.reps, calls);
        try (NDManager manager = NDManager.newBaseManager(dev);
                GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray x = leaf(manager, new Shape(1, n, dim));
            NDArray w = leaf(manager, new Shape(3L * dim, dim));
            NDArray b = leaf(manager, new Shape(3L * dim));
            NDArray u = leaf(manager, new Shape(dim));
            NDArray q = leaf(manager, new Shape(1, 8, n / 8 + 1, dim / 8));
            NDArray index = manager.zeros(new Shape(1, n, 1), DataType.INT64);
            for (Map.Entry<String, Function<NDArray, NDArray>> op : ops(x, w, b, u, q, index).entrySet()) {
                BenchRepeats.Medians m = repeats.medians(x, (step, queued) -> {
                    // each result joins the run's manager through x, its first operand, or is attached to it
                    w.tempAttach(step);
                    b.tempAttach(step);
                    u.tempAttach(step);
                    q.tempAttach(step);
                    index.tempAttach(step);
                    for (int i = 0; i < calls; i++) {
                        op.getValue().apply(x).attach(step);
                    }
                    queued.run();
                    x.get(0, 0, 0).getFloat();
                });
                out.printf(Locale.ROOT, "| %s | %.1f | %.1f |%n", op.getKey(), m.hostMillis() * 1e3 / calls,
                        m.millis() * 1e3 / calls);
                out.flush();
            }
        }
        return 0;
    }

    private static NDArray leaf(NDManager manager, Shape shape) {
        NDArray a = manager.randomNormal(shape);
        a.setRequiresGradient(true);
        return a;
    }

    /** The ops, by label; each takes x. */
    private Map<String, Function<NDArray, NDArray>> ops(NDArray x0, NDArray w, NDArray b, NDArray u, NDArray q,
            NDArray index) {
        Map<String, Function<NDArray, NDArray>> ops = new LinkedHashMap<>();
        if (FusedLinear.supports(x0, w, b)) {
            ops.put("linear (FusedLinear) -> " + 3 * dim, x -> FusedLinear.linear(x, w, b));
        }
        ops.put("matMul(w.transpose()) -> " + 3 * dim, x -> x.matMul(w.transpose()));
        ops.put("matMul(u), a vector", x -> x.matMul(u));
        ops.put("add", x -> x.add(x));
        ops.put("mul", x -> x.mul(x));
        ops.put("sum(-1)", x -> x.sum(new int[] {-1}, true));
        ops.put("gather(-1)", x -> x.gather(index, -1));
        ops.put("reshape", x -> x.reshape(n, dim));
        ops.put("transpose", x -> x.transpose(0, 2, 1));
        if (CondjlOps.supportsScaledDotProductAttention(q, q, q, null)) {
            ops.put("scaledDotProductAttention " + q.getShape(), x -> CondjlOps.scaledDotProductAttention(q, q, q,
                    null, 0.125, AttentionPrecision.INPUT));
        }
        return ops;
    }
}
