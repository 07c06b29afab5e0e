package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Locale;

/**
 * Variational (Gaussian) weight noise (RETURNN {@code param_variational_noise}, {@code rf.weight_noise}): in
 * training {@code W' = W + σ·ε}, {@code ε ~ N(0, 1)} elementwise; in eval {@code W' = W} (the same array). Register
 * it on a block with {@link Parametrized}; to combine with {@link WeightDropout}, register the noise first, which
 * gives RETURNN's order {@code drop(W + σε)}.
 *
 * <p>What is kept for backward: the noise tensor itself becomes the noisy weight (the weight is added into it in
 * place), and the addition saves nothing, so the only extra tensor is {@code W'} (saved by the consuming op for the
 * input gradient). The reference's regenerate-from-seed scheme would keep nothing; DJL has no custom autograd.
 */
public final class VariationalNoise implements Parametrization {

    private final float sigma;
    private final int minRank;

    /**
     * Noise on every parameter it is registered on (RETURNN applies it to biases too).
     *
     * @param sigma standard deviation σ ≥ 0; 0 is the identity
     * @throws IllegalArgumentException if sigma is negative or not finite
     */
    public VariationalNoise(float sigma) {
        this(sigma, 0);
    }

    /**
     * Noise that skips parameters of rank below {@code minRank}.
     *
     * @param sigma standard deviation σ ≥ 0; 0 is the identity
     * @param minRank parameters with fewer dimensions are left unchanged; at least 0
     * @throws IllegalArgumentException if sigma is negative or not finite, or minRank is negative
     */
    public VariationalNoise(float sigma, int minRank) {
        if (!(sigma >= 0f && Float.isFinite(sigma))) {
            throw new IllegalArgumentException("sigma (" + sigma + ") must be finite and >= 0");
        }
        if (minRank < 0) {
            throw new IllegalArgumentException("minRank (" + minRank + ") must be >= 0");
        }
        this.sigma = sigma;
        this.minRank = minRank;
    }

    /**
     * Adds Gaussian noise: {@code W + σ·ε}.
     *
     * @param weight any shape; differentiable
     * @param sigma standard deviation σ
     * @param manager the manager of the result (not the weight's, see {@link Parametrization})
     * @return the noisy weight, same shape and dtype, in {@code manager}
     */
    public static NDArray addNoise(NDArray weight, float sigma, NDManager manager) {
        NDArray noise =
                manager.randomNormal(0f, sigma, weight.getShape(), weight.getDataType(), weight.getDevice());
        return noise.addi(weight);
    }

    /** {@inheritDoc} */
    @Override
    public NDArray apply(NDArray value, NDManager manager, boolean training) {
        if (!training || sigma == 0f || value.getShape().dimension() < minRank) {
            return value;
        }
        return addNoise(value, sigma, manager);
    }

    /**
     * The noise standard deviation.
     *
     * @return σ
     */
    public float getSigma() {
        return sigma;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "VariationalNoise(sigma=%s, minRank=%d)", sigma, minRank);
    }
}
