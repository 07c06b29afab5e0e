package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The reference's {@code FeedForward(dim, mult)}: {@code Linear₂(GELU(Linear₁(RMSNorm(x))))} with hidden size
 * {@code int(dim · mult)}, exact (erf) GELU and biases, and no residual.
 *
 * <p>Children mirror the reference's {@code nn.Sequential}: {@code 0} RMSNorm ({@code 0.gamma}), {@code 1} Linear
 * ({@code 1.weight (hidden, dim)}, {@code 1.bias}), {@code 2} GELU, {@code 3} Linear ({@code 3.weight (dim,
 * hidden)}, {@code 3.bias}). Input and output {@code (..., dim)}.
 */
public final class FeedForward extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final RMSNorm norm;
    private final Linear up;
    private final LambdaBlock gelu;
    private final Linear down;

    private FeedForward(Builder builder) {
        super(VERSION);
        this.dim = builder.dim;
        int hidden = builder.hidden();
        norm = addChildBlock("0", new RMSNorm(dim));
        up = addChildBlock("1", Linears.of(dim, hidden, true));
        gelu = addChildBlock("2", LambdaBlock.singleton(Activation::gelu, "GELU"));
        down = addChildBlock("3", Linears.of(hidden, dim, true));
    }

    /**
     * Initialises {@code 3.weight} and {@code 3.bias} to zero, so that the output is 0 until training grows it.
     *
     * @return this block
     */
    FeedForward zeroInitOutput() {
        Linears.zeroInit(down);
        return this;
    }

    /**
     * Starts a builder.
     *
     * @return a builder with the reference's defaults ({@code mult = 4})
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Applies the feed-forward.
     *
     * @param ps the parameter store
     * @param x (..., dim) input
     * @param training whether in training mode
     * @return (..., dim)
     */
    public NDArray apply(ParameterStore ps, NDArray x, boolean training) {
        NDArray h = Linears.apply(ps, up, norm.apply(ps, x, training), training);
        h = gelu.forward(ps, new NDList(h), training).head();
        return Linears.apply(ps, down, h, training);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, inputs.head(), training));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, dim);
        norm.initialize(manager, dataType, in);
        up.initialize(manager, dataType, in);
        Shape hidden = up.getOutputShapes(new Shape[] {in})[0];
        gelu.initialize(manager, dataType, hidden);
        down.initialize(manager, dataType, hidden);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** Builder; options are the reference's keyword arguments. */
    public static final class Builder {
        private int dim;
        private double mult = 4;

        private Builder() {}

        /**
         * Sets the model width (required).
         *
         * @param dim {@code > 0}
         * @return this builder
         */
        public Builder setDim(int dim) {
            this.dim = dim;
            return this;
        }

        /**
         * Sets the hidden-width multiplier; hidden = {@code (int) (dim · mult)}, as Python's {@code int()}.
         *
         * @param mult default 4
         * @return this builder
         */
        public Builder optMult(double mult) {
            this.mult = mult;
            return this;
        }

        private int hidden() {
            return (int) (dim * mult);
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if {@code dim <= 0} or the hidden width is below 1
         */
        public FeedForward build() {
            if (dim <= 0) {
                throw new IllegalArgumentException("dim (" + dim + ") must be > 0");
            }
            if (hidden() < 1) {
                throw new IllegalArgumentException("int(dim * mult) must be >= 1, got dim " + dim + ", mult " + mult);
            }
            return new FeedForward(this);
        }
    }
}
