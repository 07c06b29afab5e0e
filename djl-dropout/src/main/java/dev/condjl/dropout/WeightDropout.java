package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Locale;

/**
 * DropConnect / weight dropout (RETURNN {@code param_dropout}, {@code rf.weight_dropout}): in training
 * {@code W' = W ⊙ m / (1 − p)} with {@code m ~ Bernoulli(1 − p)} elementwise over the full parameter shape; in
 * eval {@code W' = W} (the same array). Register it on a block with {@link Parametrized}; with the per-forward cache
 * one mask is drawn per forward pass.
 *
 * <p>What is kept for backward. PyTorch-side references (RETURNN's gradient-checkpoint scope) keep only an RNG seed
 * and regenerate the mask in backward; DJL offers no custom autograd function and no RNG state, so this version
 * stores, per parametrized weight and forward pass: the keep mask as a {@code BOOLEAN} tensor (1 byte per element,
 * saved by the multiply for the weight gradient) and the dropped weight {@code W'} (4 bytes per element for fp32,
 * saved by the consuming op, e.g. {@code linear}, for the input gradient). The uniform draw is freed as soon as the
 * mask is made, and no float mask exists. {@code condjl bench weight-dropout} measures it.
 */
public final class WeightDropout implements Parametrization {

    private final float rate;
    private final int minRank;

    /**
     * Weight dropout on every parameter it is registered on.
     *
     * @param rate drop probability p in [0, 1); 0 is the identity
     * @throws IllegalArgumentException if the rate is outside [0, 1)
     */
    public WeightDropout(float rate) {
        this(rate, 0);
    }

    /**
     * Weight dropout that skips parameters of rank below {@code minRank} (RETURNN's {@code param_dropout_min_ndim};
     * 2 skips biases and scalars).
     *
     * @param rate drop probability p in [0, 1); 0 is the identity
     * @param minRank parameters with fewer dimensions are left unchanged; at least 0
     * @throws IllegalArgumentException if the rate is outside [0, 1) or minRank is negative
     */
    public WeightDropout(float rate, int minRank) {
        if (!(rate >= 0f && rate < 1f)) {
            throw new IllegalArgumentException("rate (" + rate + ") must be in [0, 1)");
        }
        if (minRank < 0) {
            throw new IllegalArgumentException("minRank (" + minRank + ") must be >= 0");
        }
        this.rate = rate;
        this.minRank = minRank;
    }

    /**
     * Drops elements of {@code weight}: {@code W ⊙ m / (1 − p)}, {@code m = U[0,1) ≥ p} as a boolean mask.
     *
     * @param weight any shape; differentiable
     * @param rate drop probability p in (0, 1)
     * @param manager the manager of the result and the mask (not the weight's, see {@link Parametrization})
     * @return the dropped weight, same shape and dtype, in {@code manager}
     */
    public static NDArray dropConnect(NDArray weight, float rate, NDManager manager) {
        NDArray uniform =
                manager.randomUniform(0f, 1f, weight.getShape(), weight.getDataType(), weight.getDevice());
        NDArray keep = uniform.gte(Scalars.of(uniform, rate));
        uniform.close();
        NDArray dropped = keep.mul(weight);
        keep.close();
        // In place, to avoid a second weight-sized tensor; the scale is a native scalar because autograd keeps it
        // for the backward pass (see Scalars).
        return dropped.muli(Scalars.of(dropped, 1.0 / (1.0 - rate)));
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray value, NDManager manager, boolean training) {
        if (!training || rate == 0f || value.getShape().dimension() < minRank) {
            return value;
        }
        return dropConnect(value, rate, manager);
    }

    /**
     * The drop probability.
     *
     * @return p
     */
    public float getRate() {
        return rate;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "WeightDropout(rate=%s, minRank=%d)", rate, minRank);
    }
}
