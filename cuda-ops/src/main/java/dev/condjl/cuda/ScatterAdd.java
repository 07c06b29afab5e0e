package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.Arrays;

/**
 * libtorch's {@code aten::scatter_add}, {@code out = base} with {@code out[..., index[i], ...] += values[i]} along one
 * axis, called through its dispatcher so that autograd records it (DJL's Java API has no accumulating scatter). Where
 * each position of {@code base} receives at most one value (routed tokens: top-k indices are distinct) this is
 * {@code base.scatter(index, base.gather(index) + values)} in one op and one autograd node instead of three of each,
 * and equal to it bit for bit, in value and gradient: one float addition per element, and the gradients
 * {@code g} for {@code base} and {@code g.gather(index)} for {@code values}.
 *
 * <p>Every argument is a tensor or an int, so the dispatcher entry point of libtorch 2.7.1 (the CPU engine's) takes
 * it as well as 2.11's.
 */
public final class ScatterAdd {

    private static final Logger LOG = LogManager.getLogger(ScatterAdd.class);
    private static final ProbedOp OP = new ProbedOp(
            CondjlOps::dispatcherUnavailable,
            ScatterAdd::probe,
            r -> LOG.info("fused scatter-add is unavailable ({}); routed rows are added back with DJL's gather and "
                    + "scatter", r));

    private ScatterAdd() {}

    /**
     * Whether {@link #scatterAdd} runs here: the library loaded, this libtorch exports the dispatcher entry points,
     * and a probe call returned the known values. Decided once per process; when unavailable, one line is logged at
     * INFO level.
     *
     * @return the reason, or "" when usable
     */
    public static String unavailableReason() {
        return OP.unavailableReason();
    }

    /**
     * Whether {@link #scatterAdd} takes these arguments: it is available and they pass its checks.
     *
     * @param base the array added into
     * @param axis the axis the indices run along
     * @param index int64 positions
     * @param values what is added
     * @return true when a call with them would succeed (index values aside, see {@link #scatterAdd})
     */
    public static boolean supports(NDArray base, int axis, NDArray index, NDArray values) {
        return problem(base, axis, index, values) == null && unavailableReason().isEmpty();
    }

    /**
     * A copy of {@code base} with {@code values} added at {@code index} along {@code axis}: for a 3-D base and axis
     * 1, {@code out[b, index[b, j, c], c] += values[b, j, c]}. Differentiable in {@code base} and {@code values}.
     *
     * <p>Index values must lie in {@code [0, base.size(axis))}; they are not read here (that would wait for the
     * device). libtorch checks them: on the CPU with an exception (only the fresh output is written), on a GPU
     * inside the kernel (a device-side assertion, as in every aten gather and scatter, DJL's included).
     *
     * @param base float32 or float16, PyTorch engine, at least one dimension
     * @param axis in {@code [-rank, rank)}
     * @param index int64 of {@code values}' shape, of {@code base}'s rank, on its device; no larger than
     *     {@code base} on the other axes (a broadcast view, stride 0, is fine)
     * @param values {@code base}'s dtype, on its device
     * @return {@code base}'s shape, in {@code base}'s manager
     * @throws IllegalArgumentException on a shape, dtype, device or axis that does not fit
     * @throws IllegalStateException when the op is unavailable ({@link #unavailableReason})
     */
    public static NDArray scatterAdd(NDArray base, int axis, NDArray index, NDArray values) {
        String problem = problem(base, axis, index, values);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        String reason = unavailableReason();
        if (!reason.isEmpty()) {
            throw new IllegalStateException("fused scatter-add is unavailable: " + reason);
        }
        int rank = base.getShape().dimension();
        return call((PtNDArray) base, Math.floorMod(axis, rank), (PtNDArray) index, (PtNDArray) values);
    }

    private static NDArray call(PtNDArray base, int axis, PtNDArray index, PtNDArray values) {
        return new PtNDArray(base.getManager(),
                nScatterAdd(base.getHandle(), axis, index.getHandle(), values.getHandle()));
    }

    /** What is wrong with these arguments, or null. */
    private static String problem(NDArray base, int axis, NDArray index, NDArray values) {
        for (NDArray a : new NDArray[] {base, index, values}) {
            String problem = CondjlOps.notPytorch(a, a == base ? "base" : a == index ? "index" : "values");
            if (problem != null) {
                return problem;
            }
        }
        DataType type = base.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            return "base must be float32 or float16, got " + type;
        }
        if (values.getDataType() != type) {
            return "values must be " + type + " like base, got " + values.getDataType();
        }
        if (index.getDataType() != DataType.INT64) {
            return "index must be int64, got " + index.getDataType();
        }
        for (NDArray a : new NDArray[] {index, values}) {
            if (!a.getDevice().equals(base.getDevice())) {
                return (a == index ? "index" : "values") + " is on " + a.getDevice() + " but base is on "
                        + base.getDevice();
            }
        }
        Shape bs = base.getShape();
        Shape is = index.getShape();
        int rank = bs.dimension();
        if (rank == 0) {
            return "base must have at least one dimension, got " + bs;
        }
        if (!is.equals(values.getShape()) || is.dimension() != rank) {
            return "index " + is + " and values " + values.getShape() + " must have one shape, of base " + bs
                    + "'s rank";
        }
        if (axis < -rank || axis >= rank) {
            return "axis " + axis + " is out of range for base " + bs;
        }
        int a = Math.floorMod(axis, rank);
        for (int d = 0; d < rank; d++) {
            if (d != a && is.get(d) > bs.get(d)) {
                return "index " + is + " is larger than base " + bs + " on axis " + d + " (only axis " + a
                        + " may differ)";
            }
        }
        return null;
    }

    /** One call whose answer is known: "" where it works, else why not. */
    private static String probe() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            // base (1, 3, 1) = 10, 20, 30; values 1, 2 added at positions 2 and 0
            NDArray base = m.create(new float[] {10, 20, 30}, new Shape(1, 3, 1));
            NDArray index = m.create(new long[] {2, 0}, new Shape(1, 2, 1));
            NDArray values = m.create(new float[] {1, 2}, new Shape(1, 2, 1));
            float[] got = call((PtNDArray) base, 1, (PtNDArray) index, (PtNDArray) values).toFloatArray();
            float[] want = {12, 20, 31};
            return Arrays.equals(got, want) ? ""
                    : "probe call returned " + Arrays.toString(got) + ", expected " + Arrays.toString(want);
        } catch (RuntimeException e) {
            return "probe call failed: " + e.getMessage();
        }
    }

    private static native long nScatterAdd(long base, int axis, long index, long values);
}
