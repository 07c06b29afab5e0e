package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import dev.condjl.cuda.FusedNorm;
import dev.condjl.cuda.IndexViews;
import dev.condjl.cuda.ScatterAdd;
import dev.condjl.topk.ConstantCache;

/** Small tensor helpers shared by the CoLT5 blocks: token gather/scatter, masks as additive biases, padding. */
final class Tensors {

    /** The reference's {@code F.normalize} floor on {@code ‖x‖₂}. */
    static final double NORM_EPS = 1e-12;

    /** The reference's masking value {@code -finfo(float32).max}. */
    static final float MASK_VALUE = -Float.MAX_VALUE;

    private Tensors() {}

    /**
     * Moves an array computed from a parameter into the manager of a batch array, so per-call temporaries do not
     * accumulate in the model's manager (DJL attaches results to the first operand's manager). Never pass a
     * parameter's own array.
     *
     * @param derived an array computed from parameters during this call
     * @param batch an array of this call
     * @return {@code derived}, now owned by {@code batch}'s manager
     */
    static NDArray own(NDArray derived, NDArray batch) {
        derived.attach(batch.getManager());
        return derived;
    }

    /**
     * A 0-dim constant for arithmetic on the gradient path. DJL's {@code mul(Number)}/{@code div(Number)} build the
     * scalar over a Java buffer and close it at once, while autograd keeps reading it in backward; after a garbage
     * collection the gradients are garbage. A native {@code full} tensor is reference-counted by libtorch. Cached
     * ({@link ConstantCache}): never modify it, nor keep a result of which it is the first operand.
     *
     * @param like an array of this call (its device and dtype are used)
     * @param value the constant
     * @return a shared 0-dim array
     */
    static NDArray scalar(NDArray like, double value) {
        return ConstantCache.SHARED.scalar(like, (float) value, like.getDataType());
    }

    /**
     * {@code scale · x / max(‖x‖₂, 1e-12)} over the last axis as one fused op ({@link FusedNorm}, with a cached
     * constant weight {@code scale/√d}): the same value but for rows of norm near 1e-12 or below. Only where
     * {@code FusedNorm.supports(x, null)}.
     *
     * @param x (..., d) rows
     * @param scale the factor
     * @return (..., d) scaled unit rows
     */
    static NDArray fusedUnitRows(NDArray x, double scale) {
        long d = x.getShape().tail();
        float w = (float) (scale / Math.sqrt(d));
        DataType type = x.getDataType();
        NDArray weight = ConstantCache.SHARED.get(x, new Filled(d, w, type),
                m -> m.full(new Shape(d), w, type, m.getDevice()));
        return FusedNorm.rmsNorm(x, weight, NORM_EPS * NORM_EPS / d);
    }

    private record Filled(long size, float value, DataType type) {}

    /**
     * A 0-dim int64 constant on {@code like}'s device, for comparisons with index arrays. DJL's
     * {@code gte(Number)} and the like copy the number from the host, which on a GPU waits for the device. Cached
     * as {@link #scalar} is.
     *
     * @param like an array of this call (its device is used)
     * @param value the constant, {@code |value| < 2^24}
     * @return a shared 0-dim int64 array
     */
    static NDArray index(NDArray like, long value) {
        return ConstantCache.SHARED.scalar(like, value, DataType.INT64);
    }

    /**
     * Rows of {@code x} picked per batch element: {@code out[b, j..] = x[b, indices[b, j..]]}.
     *
     * @param x (b, n, d...) tokens
     * @param indices (b, m...) int64 positions in [0, n)
     * @return (b, m..., d...) gathered tokens; differentiable w.r.t. {@code x}
     */
    static NDArray gatherTokens(NDArray x, NDArray indices) {
        Shape is = indices.getShape();
        return gatherRows(x, tokenIndex(is.dimension() == 2 ? indices : indices.reshape(is.get(0), -1), x), is);
    }

    /**
     * The gather/scatter index of whole tokens: {@code positions} broadcast over the trailing axes of {@code x}, a
     * view (no copy; made without an op by {@link IndexViews} on the PyTorch engine). Built once per routing, it
     * serves the gather of the routed tokens and the scatter of their outputs.
     *
     * @param positions (b, m) int64 positions in [0, n)
     * @param x (b, n, d...) the tokens they index
     * @return (b, m, d...) int64
     */
    static NDArray tokenIndex(NDArray positions, NDArray x) {
        Shape trailing = x.getShape().slice(2);
        if (positions instanceof PtNDArray && positions.getDataType() == DataType.INT64) {
            return IndexViews.broadcastTrailing(positions, trailing);
        }
        NDArray index = positions;
        for (int i = 0; i < trailing.dimension(); i++) {
            index = index.expandDims(-1);
        }
        return index.broadcast(positions.getShape().addAll(trailing));
    }

    /**
     * {@link #gatherTokens} with its {@link #tokenIndex} built: {@code out[b, j, ..] = x[b, index[b, j, ..], ..]},
     * reshaped to {@code positions + x's trailing axes}.
     *
     * @param x (b, n, d...) tokens
     * @param index (b, m, d...) from {@link #tokenIndex}
     * @param positions the shape of the positions, (b, m) or (b, m1, m2...) with {@code m = m1·m2...}
     * @return (positions..., d...) gathered tokens; differentiable w.r.t. {@code x}
     */
    static NDArray gatherRows(NDArray x, NDArray index, Shape positions) {
        NDArray gathered = x.gather(index, 1);
        return positions.dimension() == 2 ? gathered : gathered.reshape(positions.addAll(x.getShape().slice(2)));
    }

    /**
     * Writes routed rows back: a copy of {@code base} with {@code base[b, index[b, j]] = values[b, j]}. Positions
     * must be distinct within a row (top-k indices are), so nothing is accumulated.
     *
     * @param base (b, n, d) what unrouted positions keep
     * @param index (b, k, d) from {@link #tokenIndex}
     * @param values (b, k, d) rows to write; differentiable
     * @return (b, n, d)
     */
    static NDArray scatterTokens(NDArray base, NDArray index, NDArray values) {
        return base.scatter(index, values, 1);
    }

    /**
     * Adds routed rows into {@code base}: a copy with {@code base[b, index[b, j]] += values[b, j]}. Positions must be
     * distinct within a row. One op ({@link ScatterAdd}) where the native library runs, else {@code base}'s rows
     * gathered, added to and scattered back; the values and gradients are the same bit for bit.
     *
     * @param base (b, n, d) what the routed rows add {@code values} to
     * @param index (b, k, d) from {@link #tokenIndex}
     * @param values (b, k, d) rows to add; differentiable
     * @return (b, n, d)
     */
    static NDArray addAtTokens(NDArray base, NDArray index, NDArray values) {
        if (ScatterAdd.supports(base, 1, index, values)) {
            return ScatterAdd.scatterAdd(base, 1, index, values);
        }
        return base.scatter(index, base.gather(index, 1).add(values), 1);
    }

    /**
     * A boolean keep-mask as an additive attention bias: 0 where kept, {@link #MASK_VALUE} where masked. Adding it
     * equals the reference's {@code masked_fill(~mask, -finfo.max)} for logits of magnitude below 1e31.
     *
     * @param keep boolean mask, true = attend
     * @return float32 bias of the same shape
     */
    static NDArray maskBias(NDArray keep) {
        NDArray bias = keep.toType(DataType.FLOAT32, false);
        return bias.sub(scalar(bias, 1)).mul(scalar(bias, Float.MAX_VALUE));
    }

    /**
     * Pads one axis with a constant.
     *
     * @param x any array
     * @param axis the axis to pad (negative counts from the end)
     * @param before entries added in front
     * @param after entries added at the end
     * @param value the fill value (false/true for boolean arrays: 0/1)
     * @return the padded array
     */
    static NDArray padAxis(NDArray x, int axis, long before, long after, double value) {
        if (before == 0 && after == 0) {
            return x;
        }
        int rank = x.getShape().dimension();
        int a = axis < 0 ? axis + rank : axis;
        long[] pairs = new long[2 * (rank - a)];
        pairs[pairs.length - 2] = before;
        pairs[pairs.length - 1] = after;
        return x.pad(new Shape(pairs), value);
    }

    /**
     * A slice along one axis.
     *
     * @param x any array
     * @param axis the axis (non-negative)
     * @param start first index
     * @param end index after the last
     * @return {@code x[..., start:end, ...]} at {@code axis}
     */
    static NDArray slice(NDArray x, int axis, long start, long end) {
        // leading axes as exact full ranges, which libtorch skips, where addAllDim would cost an aten::slice each
        NDIndex index = new NDIndex();
        for (int i = 0; i < axis; i++) {
            index.addSliceDim(0, x.getShape().get(i));
        }
        return x.get(index.addSliceDim(start, end));
    }
}
