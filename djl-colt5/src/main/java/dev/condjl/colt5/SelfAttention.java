package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The reference's {@code SelfAttention(dim, dim_head, heads, prenorm)}: full multi-head attention over the sequence,
 * no mask, no position encoding (the light branch of the routed image attention).
 *
 * <p>{@code x := RMSNorm(x)} if {@code prenorm}; {@code q, k, v} = chunks {@code [Q | K | V]} of
 * {@code x·W_qkvᵀ}, each head-major; {@code out = softmax(q·kᵀ·dh^-0.5)·v}, heads merged, {@code ·W_outᵀ}.
 * Parameters: {@code norm.gamma} (prenorm only), {@code to_qkv.weight (3·h·dh, dim)}, {@code to_out.weight (dim,
 * h·dh)}. Input and output {@code (b, n, dim)}.
 */
public final class SelfAttention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int dimHead;
    private final int heads;
    private final AttentionPrecision precision;
    private final RMSNorm norm;
    private final Linear toQkv;
    private final Linear toOut;

    private SelfAttention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        dimHead = builder.dimHead;
        heads = builder.heads;
        precision = builder.attentionPrecision;
        long hidden = (long) dimHead * heads;
        norm = builder.prenorm ? addChildBlock("norm", new RMSNorm(dim)) : null;
        toQkv = addChildBlock("to_qkv", Linears.of(dim, 3 * hidden, false));
        toOut = addChildBlock("to_out", Linears.of(hidden, dim, false));
    }

    /**
     * Starts a builder.
     *
     * @return a builder with the reference's defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Applies the attention.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param training whether in training mode
     * @return (b, n, dim)
     */
    public NDArray apply(ParameterStore ps, NDArray x, boolean training) {
        Inputs.checkTokens("x", x, dim);
        NDList qkv = MultiHead.split(Linears.apply(ps, toQkv, norm == null ? x : norm.apply(ps, x, training),
                training), 3, heads);
        NDArray out = Attend.attend(qkv.get(0), qkv.get(1), qkv.get(2), null, false, precision);
        return Linears.apply(ps, toOut, MultiHead.merge(out), training);
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
        if (norm != null) {
            norm.initialize(manager, dataType, in);
        }
        toQkv.initialize(manager, dataType, in);
        toOut.initialize(manager, dataType, new Shape(1, (long) heads * dimHead));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** Builder; options are the reference's keyword arguments. */
    public static final class Builder extends MultiHeadBuilder<Builder> {
        private boolean prenorm;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Whether an RMSNorm ({@code norm.gamma}) precedes the projections.
         *
         * @param prenorm default false
         * @return this builder
         */
        public Builder optPrenorm(boolean prenorm) {
            this.prenorm = prenorm;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if a size is not positive
         */
        public SelfAttention build() {
            validate();
            return new SelfAttention(this);
        }
    }
}
