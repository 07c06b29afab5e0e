package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.function.Function;

/**
 * Layer drop (x-transformers {@code layer_dropout}): with probability {@code p} a residual layer is
 * skipped for the whole batch; kept layers are not rescaled, so unlike DropPath the expectation is
 * not preserved.
 *
 * <p>A skipped layer still runs on one dummy sample (row 0 of the input, detached), and that output
 * times zero is folded into the stream: every parameter stays in the autograd graph and receives an
 * exact-zero gradient instead of none, so data-parallel gradient reduction sees the same parameters
 * every step (the remedy proposed in x-transformers issue #294). One whole sample is routed rather
 * than one token because wrapped blocks may need the full sequence (masks of shape {@code (b, n,
 * ...)}, routers that pick {@code k <= n} tokens); the cost is {@code 1/b} of a kept layer. A
 * non-finite dummy output would turn the stream into NaN, as it would in a kept layer.
 */
public final class LayerDrop {

    private LayerDrop() {}

    /**
     * Decides whether to skip a layer: one uniform draw from the engine's seeded generator.
     *
     * @param manager the manager to draw with
     * @param p the drop probability in {@code [0, 1]}
     * @return {@code u < p} with {@code u ~ U[0, 1)}; never draws when {@code p = 0}
     */
    public static boolean sampleDrop(NDManager manager, double p) {
        StochasticDepth.checkProbability("p", p);
        if (p == 0) {
            return false;
        }
        try (NDArray u = manager.randomUniform(0f, 1f, new Shape(1), DataType.FLOAT64)) {
            return u.getDouble(0) < p;
        }
    }

    /**
     * Applies a residual layer with layer drop.
     *
     * @param x {@code (b, ...)} the residual stream
     * @param branch the residual branch; maps {@code (m, ...)} to {@code (m, ...)} for any m
     * @param p the drop probability in {@code [0, 1]}
     * @param training whether to drop; otherwise {@code x + f(x)}
     * @return {@code x + f(x)} when kept, a value-identical copy of {@code x} that carries a zero
     *     gradient into the branch when skipped
     */
    public static NDArray layerDrop(
            NDArray x, Function<NDArray, NDArray> branch, double p, boolean training) {
        StochasticDepth.checkProbability("p", p);
        if (training && sampleDrop(x.getManager(), p)) {
            return addZero(x, branch.apply(dummyRows(x)));
        }
        return x.add(branch.apply(x));
    }

    /**
     * The input rows a skipped layer is run on: row 0, detached so that no gradient path to the
     * stream is added.
     *
     * @param input {@code (b, ...)} any batch-major input of the layer
     * @return {@code (1, ...)}
     */
    public static NDArray dummyRows(NDArray input) {
        return input.get(new NDIndex("0:1")).stopGradient();
    }

    /**
     * Folds a dummy residual into the stream with weight zero.
     *
     * @param x {@code (b, ...)} the residual stream
     * @param dummyResidual the branch output on {@link #dummyRows}, any shape
     * @return {@code x}, bit-identical in value, with {@code dummyResidual} in its autograd graph
     */
    public static NDArray addZero(NDArray x, NDArray dummyResidual) {
        // |0 * s| is +0 (or NaN), and v - (+0) == v bit for bit, including v = -0.0
        // zerosLike gives a native scalar: mul(Number) wraps a Java buffer that GC may free before backward
        NDArray sum = dummyResidual.sum();
        NDArray zero = sum.mul(sum.zerosLike()).abs();
        return x.sub(zero);
    }
}
