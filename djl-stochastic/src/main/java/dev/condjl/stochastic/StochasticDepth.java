package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import dev.condjl.cuda.IndexViews;
import dev.condjl.cuda.ScatterAdd;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Batch-subset stochastic depth, DINOv2's {@code drop_add_residual_stochastic_depth}: the residual
 * branch runs on a random subset of {@code k} samples only and is added back scaled by {@code b/k},
 * so dropped samples cost no compute or activation memory and the expectation is the full residual.
 *
 * <p>For {@code x} of shape {@code (b, ...)} and a per-sample branch {@code f}:
 *
 * <ul>
 *   <li>{@code k = max((int) (b * (1.0 - p)), 1)} in double arithmetic (b=90, p=0.3 gives 62);
 *   <li>{@code idx}: {@code k} distinct rows drawn from the engine's seeded generator;
 *   <li>{@code out_i = x_i + (b/k) * f(x_i)} for {@code i} in {@code idx}, {@code out_i = x_i}
 *       (bit-identical) otherwise.
 * </ul>
 *
 * <p>{@code E[out_i] = x_i + f(x_i)} when {@code f} is per-sample (no cross-sample mixing, no
 * BatchNorm). Parameters of {@code f} always receive a gradient, even at {@code p = 1}, because
 * {@code k >= 1}.
 */
public final class StochasticDepth {

    /**
     * DINOv2's switch point: above this rate the subset method pays for its gather and scatter, at
     * or below it DropPath is used ({@link StochasticDepthMode#AUTO}).
     */
    public static final double SUBSET_THRESHOLD = 0.1;

    private StochasticDepth() {}

    /**
     * The number of samples that run the branch.
     *
     * @param batchSize {@code b >= 1}
     * @param p the drop probability in {@code [0, 1]}
     * @return {@code max((int) (b * (1.0 - p)), 1)}, computed in double exactly as DINOv2 does
     */
    public static int subsetSize(long batchSize, double p) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize (" + batchSize + ") must be >= 1");
        }
        checkProbability("p", p);
        return Math.max((int) (batchSize * (1.0 - p)), 1);
    }

    /**
     * The scale applied to the branch output of the selected samples.
     *
     * @param batchSize {@code b}
     * @param subsetSize {@code k}, {@code 1 <= k <= b}
     * @return {@code b / k} in double (not {@code 1 / (1 - p)})
     */
    public static double subsetScale(long batchSize, long subsetSize) {
        if (subsetSize < 1 || subsetSize > batchSize) {
            throw new IllegalArgumentException(
                    "subsetSize (" + subsetSize + ") must be in [1, batchSize=" + batchSize + "]");
        }
        return (double) batchSize / subsetSize;
    }

    /**
     * Draws the rows that run the branch: the first {@code k} entries of a random permutation of
     * {@code [0, b)}, from the engine's generator ({@code Engine.setRandomSeed} makes it
     * reproducible).
     *
     * @param manager the manager (and device) of the result, usually {@code x.getManager()}
     * @param batchSize {@code b}
     * @param p the drop probability in {@code [0, 1]}
     * @return {@code (k)} int64 distinct row indices, in random order
     */
    public static NDArray sampleSubset(NDManager manager, long batchSize, double p) {
        int k = subsetSize(batchSize, p);
        return manager.randomPermutation(batchSize).get(new NDIndex(":{}", k));
    }

    /**
     * Adds the residual of the batch subset, DINOv2 {@code drop_add_residual_stochastic_depth}.
     * Eval, and {@code p = 0}, give the plain residual {@code x + f(x)} without drawing anything.
     *
     * @param x {@code (b, ...)} the residual stream
     * @param branch the per-sample residual branch; maps {@code (k, ...)} to the same shape and
     *     data type
     * @param p the drop probability in {@code [0, 1]}
     * @param training whether to drop; {@code false} gives {@code x + f(x)}
     * @return {@code (b, ...)}
     */
    public static NDArray dropAddResidual(
            NDArray x, Function<NDArray, NDArray> branch, double p, boolean training) {
        checkProbability("p", p);
        if (!training || p == 0) {
            return x.add(branch.apply(x));
        }
        NDArray idx = sampleSubset(x.getManager(), batchSize(x), p);
        return dropAddResidual(x, idx, branch);
    }

    /**
     * Adds the residual of a given subset of rows (an injected index source, e.g. for tests).
     *
     * @param x {@code (b, ...)} the residual stream
     * @param idx {@code (k)} int64 distinct row indices in {@code [0, b)}
     * @param branch the per-sample residual branch
     * @return {@code (b, ...)}: {@code x_i + (b/k) f(x_i)} for selected rows, {@code x_i} otherwise
     */
    public static NDArray dropAddResidual(
            NDArray x, NDArray idx, Function<NDArray, NDArray> branch) {
        NDArray xSub = rows(x, idx);
        return addSubsetResidual(x, idx, xSub, branch.apply(xSub));
    }

    /**
     * The rows {@code x[idx]}, as a gather along axis 0 with the index broadcast over the other axes. Values equal
     * advanced indexing's; its backward is one scatter-add, where advanced indexing's ({@code index_put_} with
     * accumulation) sorts the indices first: on an H200 that one autograd node took 0.75 ms of a training step.
     *
     * @param x {@code (b, ...)} any data type
     * @param idx {@code (k)} int64 row indices in {@code [0, b)}
     * @return {@code (k, ...)}, differentiable with respect to {@code x}
     */
    public static NDArray rows(NDArray x, NDArray idx) {
        long k = idx.getShape().get(0);
        Shape s = x.getShape();
        Shape subShape = new Shape(k).addAll(s.slice(1));
        try (NDArray index = rowIndex(idx, subShape)) {
            return x.gather(index, 0);
        }
    }

    /**
     * {@code idx (k)} as an index of {@code subShape (k, ...)}: broadcast over the trailing axes, a view made without
     * an op ({@link IndexViews}) where it can be, else reshaped to (k, 1, ..., 1) and broadcast.
     */
    private static NDArray rowIndex(NDArray idx, Shape subShape) {
        if (idx instanceof PtNDArray && idx.getDataType() == DataType.INT64) {
            return IndexViews.broadcastTrailing(idx, subShape.slice(1));
        }
        long[] indexShape = new long[subShape.dimension()];
        Arrays.fill(indexShape, 1);
        indexShape[0] = subShape.get(0);
        return idx.reshape(indexShape).broadcast(subShape);
    }

    /**
     * The index-add step: {@code out = x}, then {@code out[idx[j]] = xSub[j] + (b/k) r[j]}. DJL has
     * no {@code index_add}; because the rows are distinct, the scaled rows are added into {@code x}
     * out of place by one scatter-add ({@link ScatterAdd}, where the native library runs) or the
     * updated rows scattered into it, differentiable with respect to {@code x} and the branch, the
     * same values either way, and the other rows bit-identical (adding a zero would turn
     * {@code -0.0} into {@code 0.0}).
     *
     * @param x {@code (b, ...)} the residual stream
     * @param idx {@code (k)} int64 distinct row indices
     * @param xSub {@code (k, ...)} must be {@code x[idx]} (passed in so the gather is not repeated)
     * @param residual {@code (k, ...)} the branch output on {@code xSub}, same data type as x
     * @return {@code (b, ...)}
     */
    public static NDArray addSubsetResidual(
            NDArray x, NDArray idx, NDArray xSub, NDArray residual) {
        Shape subShape = xSub.getShape();
        if (!residual.getShape().equals(subShape)) {
            throw new IllegalArgumentException(
                    "branch output shape "
                            + residual.getShape()
                            + " must equal its input shape "
                            + subShape);
        }
        if (residual.getDataType() != x.getDataType()) {
            // a cast would cut the gradient (toType is not differentiable in DJL)
            throw new IllegalArgumentException(
                    "branch output data type "
                            + residual.getDataType()
                            + " must equal the input data type "
                            + x.getDataType());
        }
        double alpha = subsetScale(batchSize(x), subShape.get(0));
        // DJL keeps every array until its manager closes; autograd holds its own references, so
        // the temporaries are released here rather than at the end of the training step
        // a native scalar: mul(Number) wraps a Java buffer that GC may free before backward reads it
        try (NDArray alphaScalar = residual.getManager().full(new Shape(), (float) alpha, residual.getDataType());
                NDArray scaled = residual.mul(alphaScalar);
                NDArray index = rowIndex(idx, subShape)) {
            if (ScatterAdd.supports(x, 0, index, scaled)) {
                return ScatterAdd.scatterAdd(x, 0, index, scaled);
            }
            try (NDArray rows = xSub.add(scaled)) {
                return x.scatter(index, rows, 0);
            }
        }
    }

    static long batchSize(NDArray x) {
        if (x.getShape().dimension() < 1) {
            throw new IllegalArgumentException(
                    "x must have a batch axis, got shape " + x.getShape());
        }
        return x.getShape().get(0);
    }

    static void checkProbability(String name, double p) {
        if (!(p >= 0 && p <= 1)) {
            throw new IllegalArgumentException(name + " (" + p + ") must be in [0, 1]");
        }
    }
}
