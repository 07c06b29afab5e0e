package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.Arrays;

/**
 * libtorch's {@code aten::unfold}, the sliding windows of one axis as a view (no copy; windows may overlap), called
 * through its dispatcher so that autograd records it (DJL's Java API has no unfold). For {@code x} of shape
 * {@code (..., L, ...)} along {@code axis}, windows of {@code size} every {@code step} give {@code (..., W, ..., size)}
 * with {@code W = (L − size)/step + 1}, the window's entries on a new last axis: {@code out[.., w, .., t] = x[..,
 * w·step + t, ..]}. The gradient sums over the windows an entry belongs to.
 *
 * <p>Every argument is a tensor or an int, so the dispatcher entry point of libtorch 2.7.1 (the CPU engine's) takes
 * it as well as 2.11's.
 */
public final class Unfold {

    private static final Logger LOG = LogManager.getLogger(Unfold.class);
    private static final ProbedOp OP = new ProbedOp(
            CondjlOps::dispatcherUnavailable,
            Unfold::probe,
            r -> LOG.info("unfold is unavailable ({}); windows are cut with DJL's slices", r));

    private Unfold() {}

    /**
     * Whether {@link #unfold} runs here: the library loaded, this libtorch exports the dispatcher entry points, and a
     * probe call returned the known values. Decided once per process; when unavailable, one line is logged at INFO
     * level.
     *
     * @return the reason, or "" when usable
     */
    public static String unavailableReason() {
        return OP.unavailableReason();
    }

    /**
     * The windows of {@code x} along {@code axis}, as a view that autograd records.
     *
     * @param x a PyTorch-engine array of any dtype, at least one dimension
     * @param axis in {@code [-rank, rank)}
     * @param size window length, {@code 1 <= size <= x.size(axis)}
     * @param step distance between window starts, {@code >= 1}
     * @return {@code x}'s shape with {@code axis} of length {@code (L − size)/step + 1} and a last axis of
     *     {@code size}, in {@code x}'s manager, sharing its memory
     * @throws IllegalArgumentException on an axis, size or step that does not fit
     * @throws IllegalStateException when the op is unavailable ({@link #unavailableReason})
     */
    public static NDArray unfold(NDArray x, int axis, long size, long step) {
        PtNDArray px = CondjlOps.pytorch(x, "x");
        Shape s = x.getShape();
        int rank = s.dimension();
        if (rank == 0 || axis < -rank || axis >= rank) {
            throw new IllegalArgumentException("axis " + axis + " is out of range for x " + s);
        }
        int a = Math.floorMod(axis, rank);
        if (size < 1 || size > s.get(a) || step < 1) {
            throw new IllegalArgumentException("windows of " + size + " every " + step + " do not fit axis " + a
                    + " of x " + s);
        }
        String reason = unavailableReason();
        if (!reason.isEmpty()) {
            throw new IllegalStateException("unfold is unavailable: " + reason);
        }
        return call(px, a, size, step);
    }

    private static NDArray call(PtNDArray x, int axis, long size, long step) {
        return new PtNDArray(x.getManager(), nUnfold(x.getHandle(), axis, size, step));
    }

    /** One call whose answer is known: "" where it works, else why not. */
    private static String probe() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            // 0..4 in windows of 3 every 2: (0, 1, 2) and (2, 3, 4)
            NDArray x = m.arange(5f);
            NDArray got = call((PtNDArray) x, 0, 3, 2);
            float[] values = got.toFloatArray();
            float[] want = {0, 1, 2, 2, 3, 4};
            return got.getShape().equals(new Shape(2, 3)) && Arrays.equals(values, want) ? ""
                    : "probe call returned " + got.getShape() + " " + Arrays.toString(values) + ", expected (2, 3) "
                            + Arrays.toString(want);
        } catch (RuntimeException e) {
            return "probe call failed: " + e.getMessage();
        }
    }

    private static native long nUnfold(long x, int axis, long size, long step);
}
