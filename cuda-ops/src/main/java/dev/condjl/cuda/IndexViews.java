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
 * Index arrays as broadcast views made without an op: {@code positions (b, m)} as {@code (b, m, d)} with stride 0 on
 * the new axis, the index that gathers or scatters whole rows. DJL builds it with two ops ({@code expandDims},
 * {@code broadcast}); here it is one native call that makes the view through libtorch's C shim (no dispatch, no
 * kernel). The view has no autograd history, so only int64 and boolean arrays, which never carry a gradient, are
 * taken.
 */
public final class IndexViews {

    private static final Logger LOG = LogManager.getLogger(IndexViews.class);
    private static final ProbedOp OP = new ProbedOp(
            () -> CondjlOps.isAvailable() ? "" : CondjlOps.unavailableReason(),
            IndexViews::probe,
            r -> LOG.info("native index views are unavailable ({}); indices are broadcast with DJL's operations", r));

    private IndexViews() {}

    /**
     * Whether the native view is made here: the library loaded and a probe call returned the known values. Decided
     * once per process; when unavailable, one line is logged at INFO level and {@link #broadcastTrailing} uses DJL's
     * operations.
     *
     * @return the reason, or "" when usable
     */
    public static String unavailableReason() {
        return OP.unavailableReason();
    }

    /**
     * {@code x} broadcast over new trailing axes: {@code out[i.., j..] = x[i..]}, the values of
     * {@code x.expandDims(-1)...broadcast(x.shape + trailing)}, as a view of {@code x}'s memory.
     *
     * @param x int64 or boolean, PyTorch engine
     * @param trailing the sizes of the new last axes, each {@code >= 0}
     * @return {@code x.shape + trailing}, in {@code x}'s manager; never to be written to
     * @throws IllegalArgumentException if {@code x} is null, not a PyTorch array, of another dtype, or a size is
     *     negative
     */
    public static NDArray broadcastTrailing(NDArray x, Shape trailing) {
        PtNDArray px = CondjlOps.pytorch(x, "x");
        if (x.getDataType() != DataType.INT64 && x.getDataType() != DataType.BOOLEAN) {
            throw new IllegalArgumentException(
                    "x must be int64 or boolean (the view carries no gradient), got " + x.getDataType());
        }
        for (long size : trailing.getShape()) {
            if (size < 0) {
                throw new IllegalArgumentException("trailing sizes must be >= 0, got " + trailing);
            }
        }
        if (!unavailableReason().isEmpty()) {
            NDArray index = x;
            for (int i = 0; i < trailing.dimension(); i++) {
                index = index.expandDims(-1);
            }
            return index.broadcast(x.getShape().addAll(trailing));
        }
        return call(px, trailing);
    }

    private static NDArray call(PtNDArray x, Shape trailing) {
        return new PtNDArray(x.getManager(), nBroadcastTrailing(x.getHandle(), trailing.getShape()));
    }

    /** One call whose answer is known: "" where it works, else why not. */
    private static String probe() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            // a column of the (2, 3) positions 0..5 (stride 3, offset 1) broadcast to (2, 2)
            NDArray column = m.arange(0, 6, 1, DataType.INT64).reshape(2, 3).get(":, 1");
            NDArray got = call((PtNDArray) column, new Shape(2));
            long[] values = got.toLongArray();
            long[] want = {1, 1, 4, 4};
            return got.getShape().equals(new Shape(2, 2)) && Arrays.equals(values, want) ? ""
                    : "probe call returned " + got.getShape() + " " + Arrays.toString(values) + ", expected (2, 2) "
                            + Arrays.toString(want);
        } catch (RuntimeException e) {
            return "probe call failed: " + e.getMessage();
        }
    }

    private static native long nBroadcastTrailing(long x, long[] trailing);
}
