package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The reference's {@code ConditionalRoutedTransformerBlock} (spec colt5.md §2.12):
 *
 * <pre>
 *   x = conditional_attn(x, mask, Kq, Kkv) + x
 *   x = conditional_ff(x, mask, Kff) + x
 * </pre>
 *
 * <p>No final norm, no dropout. Children: {@code conditional_ff} ({@link ConditionalRoutedFeedForward}) and
 * {@code conditional_attn} ({@link ConditionalRoutedAttention}); both get the same {@code router_kwargs}. Input
 * {@code x (b, n, dim)}, optional {@code mask (b, n)}; output {@code (b, n, dim)}. Per-call overrides: params
 * {@code num_heavy_attn_tokens_q}, {@code num_heavy_attn_tokens_kv}, {@code num_heavy_ff_tokens}.
 */
public final class ConditionalRoutedTransformerBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final ConditionalRoutedFeedForward conditionalFf;
    private final ConditionalRoutedAttention conditionalAttn;

    private ConditionalRoutedTransformerBlock(Builder b) {
        super(VERSION);
        dim = b.dim;
        conditionalFf = addChildBlock("conditional_ff", ConditionalRoutedFeedForward.builder()
                .setDim(dim)
                .setNumHeavyTokens(b.numHeavyFfTokens)
                .optLightFfMult(b.lightFfMult)
                .optHeavyFfMult(b.heavyFfMult)
                .optRouterStraightThrough(b.routerStraightThrough)
                .optRouterKwargs(b.routerKwargs)
                .optZeroInitHeavyBranch(b.zeroInitHeavyBranch)
                .build());
        conditionalAttn = addChildBlock("conditional_attn", ConditionalRoutedAttention.builder()
                .setDim(dim)
                .setNumHeavyTokensQ(b.numHeavyAttnTokensQ)
                .setNumHeavyTokensKv(b.numHeavyAttnTokensKv)
                .optNumRoutedKv(b.numRoutedKv)
                .optLightDimHead(b.lightDimHead)
                .optLightHeads(b.lightHeads)
                .optLightWindowSize(b.lightWindowSize)
                .optHeavyDimHead(b.heavyDimHead)
                .optHeavyHeads(b.heavyHeads)
                .optRouterStraightThrough(b.routerStraightThrough)
                .optRouterKwargs(b.routerKwargs)
                .optMultiplyKeysByScore(b.multiplyKeysByScore)
                .optMultiplyQueriesByScore(b.multiplyQueriesByScore)
                .optUseNullQTokens(b.useNullQTokens)
                .optZeroInitHeavyBranch(b.zeroInitHeavyBranch)
                .optAttentionPrecision(b.attentionPrecision)
                .build());
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
     * Applies the block.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyAttnTokensQ null, or this call's Kq
     * @param numHeavyAttnTokensKv null, or this call's Kkv
     * @param numHeavyFfTokens null, or this call's Kff
     * @param training whether in training mode
     * @return (b, n, dim)
     */
    public NDArray apply(
            ParameterStore ps,
            NDArray x,
            NDArray mask,
            Integer numHeavyAttnTokensQ,
            Integer numHeavyAttnTokensKv,
            Integer numHeavyFfTokens,
            boolean training) {
        return applyWithRouting(ps, x, mask, numHeavyAttnTokensQ, numHeavyAttnTokensKv, numHeavyFfTokens, training)
                .output();
    }

    /**
     * As {@link #apply}, also returning the three routers' choices (see {@link RoutedOutput}).
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyAttnTokensQ null, or this call's Kq
     * @param numHeavyAttnTokensKv null, or this call's Kkv
     * @param numHeavyFfTokens null, or this call's Kff
     * @param training whether in training mode
     * @return the (b, n, dim) output, and the query, key/value and feed-forward positions
     */
    public RoutedOutput applyWithRouting(
            ParameterStore ps,
            NDArray x,
            NDArray mask,
            Integer numHeavyAttnTokensQ,
            Integer numHeavyAttnTokensKv,
            Integer numHeavyFfTokens,
            boolean training) {
        RoutedOutput attn =
                conditionalAttn.applyWithRouting(ps, x, mask, numHeavyAttnTokensQ, numHeavyAttnTokensKv, training);
        NDArray h = attn.output().add(x);
        RoutedOutput ff = conditionalFf.applyWithRouting(ps, h, mask, numHeavyFfTokens, training);
        return new RoutedOutput(ff.output().add(h), attn.qIndices(), attn.kvIndices(), ff.ffIndices());
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, optional {@code mask}. Params:
     * {@code num_heavy_attn_tokens_q}, {@code num_heavy_attn_tokens_kv}, {@code num_heavy_ff_tokens},
     * {@code return_routing} (then the output is followed by {@code q_indices}, {@code kv_indices} and
     * {@code ff_indices}, see {@link RoutedOutput}).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        RoutedOutput out = applyWithRouting(ps, Inputs.required(inputs, "x", 0), Inputs.tensor(inputs, "mask", 1),
                Inputs.integer(params, "num_heavy_attn_tokens_q"), Inputs.integer(params, "num_heavy_attn_tokens_kv"),
                Inputs.integer(params, "num_heavy_ff_tokens"), training);
        return Inputs.flag(params, "return_routing") ? out.toNDList() : new NDList(out.output());
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, 1, dim);
        conditionalFf.initialize(manager, dataType, in);
        conditionalAttn.initialize(manager, dataType, in);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /**
     * Builder; options are the reference's keyword arguments ({@code use_triton}, {@code use_flash_attn}: none),
     * the shared ones in {@link RoutedAttentionBuilder}.
     */
    public static final class Builder extends RoutedAttentionBuilder<Builder> {
        private int numHeavyAttnTokensQ;
        private int numHeavyAttnTokensKv;
        private int numHeavyFfTokens;
        private double lightFfMult = 0.5;
        private double heavyFfMult = 4;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the attention's routed queries Kq (required).
         *
         * @param numHeavyAttnTokensQ {@code >= 1}
         * @return this builder
         */
        public Builder setNumHeavyAttnTokensQ(int numHeavyAttnTokensQ) {
            this.numHeavyAttnTokensQ = numHeavyAttnTokensQ;
            return this;
        }

        /**
         * Sets the attention's routed keys/values Kkv (required).
         *
         * @param numHeavyAttnTokensKv {@code >= 1}
         * @return this builder
         */
        public Builder setNumHeavyAttnTokensKv(int numHeavyAttnTokensKv) {
            this.numHeavyAttnTokensKv = numHeavyAttnTokensKv;
            return this;
        }

        /**
         * Sets the feed-forward's routed tokens Kff (required).
         *
         * @param numHeavyFfTokens {@code >= 1}
         * @return this builder
         */
        public Builder setNumHeavyFfTokens(int numHeavyFfTokens) {
            this.numHeavyFfTokens = numHeavyFfTokens;
            return this;
        }

        /**
         * Sets the light feed-forward's multiplier.
         *
         * @param lightFfMult default 0.5
         * @return this builder
         */
        public Builder optLightFfMult(double lightFfMult) {
            this.lightFfMult = lightFfMult;
            return this;
        }

        /**
         * Sets the heavy feed-forward's multiplier.
         *
         * @param heavyFfMult default 4
         * @return this builder
         */
        public Builder optHeavyFfMult(double heavyFfMult) {
            this.heavyFfMult = heavyFfMult;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if an option is out of range
         */
        public ConditionalRoutedTransformerBlock build() {
            return new ConditionalRoutedTransformerBlock(this);
        }
    }
}
