package dev.condjl.colt5.cdattention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import dev.condjl.colt5.LayerNorm;
import dev.condjl.colt5.Sequential;
import dev.condjl.topk.CoordinateDescent;

/**
 * The feed-forward of coordinate-descent-attention 0.0.11 (spec colt5.md §7.2):
 * {@code proj_out(act(proj_in(x)))} with {@code proj_in = [LayerNorm(d), Linear(d, mult·d)]}.
 *
 * <p>{@code act} is exact GELU, or with {@code useCoorDescent} the coordinate-descent soft top-k over the hidden
 * dimension: each token keeps about {@code k} hidden units with weights in [0, 1] (the scores themselves are the
 * activation). The reference's coordinate-descent path raises a NameError (a typo, spec §7.5.1); this one runs with
 * the configured ε decay.
 *
 * <p>{@code state_dict}: {@code proj_in.0.weight/bias}, {@code proj_in.1.weight (mult·d, d)},
 * {@code proj_in.1.bias}, {@code proj_out.weight (d, mult·d)}, {@code proj_out.bias}.
 */
public final class FeedForward extends AbstractBlock {

    private static final byte VERSION = 1;

    private final long hidden;
    private final boolean useCoorDescent;
    private final double sparsityK;
    private final CoordinateDescent.Options options;
    private final Sequential projIn;
    private final Linear projOut;

    private FeedForward(Builder builder) {
        super(VERSION);
        hidden = (long) (builder.dim * builder.mult);
        useCoorDescent = builder.useCoorDescent;
        sparsityK = builder.coorDescentSparsityK == null ? hidden / 10 : builder.coorDescentSparsityK;
        options = builder.options();
        projIn = addChildBlock("proj_in", new Sequential());
        projIn.add(new LayerNorm());
        projIn.add(Linear.builder().setUnits(hidden).build());
        projOut = addChildBlock("proj_out", Linear.builder().setUnits(builder.dim).build());
    }

    /**
     * Creates a builder; {@link Builder#setDim} is required.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        projIn.initialize(manager, dataType, inputShapes[0]);
        projOut.initialize(manager, dataType, projIn.getOutputShapes(inputShapes));
    }

    /**
     * Applies the feed-forward.
     *
     * @param ps the parameter store
     * @param inputs {@code x (..., d)}
     * @param training whether in training
     * @param params unused
     * @return {@code (..., d)}
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray h = projIn.forward(ps, inputs, training).head();
        NDArray act = useCoorDescent ? CoordinateDescent.solve(h, sparsityK, null, options) : Activation.gelu(h);
        return projOut.forward(ps, new NDList(act), training);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /**
     * Returns the sparsity {@code k} of the coordinate-descent activation.
     *
     * @return {@code coorDescentSparsityK}, or {@code hidden / 10} (integer division) when it was not set
     */
    public double getSparsityK() {
        return sparsityK;
    }

    /** Builds a {@link FeedForward}; option names follow the reference's keyword arguments. */
    public static final class Builder extends CoorDescentBuilder<Builder> {

        private double mult = 4;
        private boolean useCoorDescent;
        private Double coorDescentSparsityK;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the hidden-size multiplier ({@code mult}); the hidden size is {@code (long) (d·mult)}; default 4.
         *
         * @param mult {@code > 0}
         * @return this builder
         */
        public Builder optMult(double mult) {
            this.mult = mult;
            return this;
        }

        /**
         * Uses the coordinate-descent activation instead of GELU ({@code use_coor_descent}); default false.
         *
         * @param useCoorDescent whether to use coordinate descent
         * @return this builder
         */
        public Builder optUseCoorDescent(boolean useCoorDescent) {
            this.useCoorDescent = useCoorDescent;
            return this;
        }

        /**
         * Sets the hidden units kept per token ({@code coor_descent_sparsity_k}); default {@code hidden / 10}.
         *
         * @param k null for the default, else {@code > 0}
         * @return this builder
         */
        public Builder optCoorDescentSparsityK(Double k) {
            this.coorDescentSparsityK = k;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @return the block
         * @throws IllegalArgumentException if a size is out of range or the coordinate-descent settings are invalid
         */
        public FeedForward build() {
            Attention.requireAtLeast("dim", dim, 1);
            if (!(mult > 0) || (long) (dim * mult) < 1) {
                throw new IllegalArgumentException(
                        "mult (" + mult + ") must give a hidden size >= 1 for dim " + dim);
            }
            long hidden = (long) (dim * mult);
            double k = coorDescentSparsityK == null ? hidden / 10 : coorDescentSparsityK;
            if (useCoorDescent && !(k > 0)) {
                throw new IllegalArgumentException("coorDescentSparsityK (" + k + ") must be > 0 (the default is hidden"
                        + " size / 10 = " + hidden / 10 + " for hidden size " + hidden + ")");
            }
            return new FeedForward(this);
        }
    }
}
