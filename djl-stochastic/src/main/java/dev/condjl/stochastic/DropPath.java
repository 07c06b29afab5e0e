package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.Arrays;
import java.util.Locale;

/**
 * timm's {@code DropPath}: drops whole samples of a residual branch output with a per-sample
 * Bernoulli mask. Stateless; it draws a fresh mask on every call from the engine's generator.
 *
 * <p>{@code out = x * m / q} with {@code m_i ~ Bernoulli(q)}, {@code q = 1 - p}, one draw per
 * sample (mask shape {@code (b, 1, ..., 1)}); without {@code scaleByKeep} the division is left out.
 * At {@code p = 1} the output is all zeros (no division by zero). The block maps a single input
 * {@code (b, ...)} to the same shape.
 */
public final class DropPath extends AbstractBlock {

    private static final byte VERSION = 1;

    private final double dropProb;
    private final boolean scaleByKeep;

    private DropPath(Builder builder) {
        super(VERSION);
        dropProb = builder.dropProb;
        scaleByKeep = builder.scaleByKeep;
    }

    /**
     * Applies DropPath, timm {@code drop_path(x, drop_prob, training, scale_by_keep)}.
     *
     * @param x {@code (b, ...)} a residual branch output
     * @param p the drop probability in {@code [0, 1]}
     * @param training whether to drop; otherwise {@code x} itself is returned
     * @param scaleByKeep divide kept samples by {@code 1 - p} (in x's data type) so that {@code
     *     E[out] = x}
     * @return {@code (b, ...)}; {@code x} itself when {@code p = 0} or not training
     */
    public static NDArray dropPath(NDArray x, double p, boolean training, boolean scaleByKeep) {
        StochasticDepth.checkProbability("p", p);
        if (p == 0 || !training) {
            return x;
        }
        double keep = 1 - p;
        long[] maskShape = new long[x.getShape().dimension()];
        Arrays.fill(maskShape, 1);
        maskShape[0] = StochasticDepth.batchSize(x);
        try (NDArray uniform =
                        x.getManager()
                                .randomUniform(0f, 1f, new Shape(maskShape), x.getDataType());
                NDArray kept = uniform.lt(keep);
                NDArray mask = kept.toType(x.getDataType(), false);
                NDArray scaled = keep > 0 && scaleByKeep ? mask.div(keep) : null) {
            return x.mul(scaled == null ? mask : scaled);
        }
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return new NDList(dropPath(inputs.singletonOrThrow(), dropProb, training, scaleByKeep));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return inputShapes;
    }

    /**
     * The drop probability.
     *
     * @return {@code p}
     */
    public double getDropProb() {
        return dropProb;
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "DropPath(drop_prob=%.3f)", dropProb);
    }

    /**
     * Creates a builder.
     *
     * @return a new builder (drop probability 0, scale by keep)
     */
    public static Builder builder() {
        return new Builder();
    }

    /** Builder for {@link DropPath}. */
    public static final class Builder {

        private double dropProb;
        private boolean scaleByKeep = true;

        private Builder() {}

        /**
         * Sets the drop probability (default 0: identity).
         *
         * @param dropProb {@code p} in {@code [0, 1]}
         * @return this builder
         */
        public Builder optDropProb(double dropProb) {
            this.dropProb = dropProb;
            return this;
        }

        /**
         * Sets whether kept samples are divided by {@code 1 - p} (default true).
         *
         * @param scaleByKeep timm's {@code scale_by_keep}
         * @return this builder
         */
        public Builder optScaleByKeep(boolean scaleByKeep) {
            this.scaleByKeep = scaleByKeep;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return a new {@link DropPath}
         */
        public DropPath build() {
            StochasticDepth.checkProbability("dropProb", dropProb);
            return new DropPath(this);
        }
    }
}
