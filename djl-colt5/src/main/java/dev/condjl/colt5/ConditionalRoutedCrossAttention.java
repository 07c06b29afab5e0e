package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The reference's {@code ConditionalRoutedCrossAttention} with its intended semantics (spec colt5.md §2.8): routed
 * queries attend to routed tokens of a (long) context.
 *
 * <pre>
 *   iq, sq, xq = q_router(x, Kq, mask)
 *   if n_ctx &gt; Kkv:  _, skv, c, cm = kv_router(context, Kkv, context_mask)     R = kvRoutingTokens routes
 *   else:            c, cm, skv = context, context_mask, none
 *   o = heavy_attn(xq, c, cm, skv)                          no rotary, no query-score multiply
 *   if n_q &lt;= Kq: return o
 *   return null_q_token (or 0) everywhere, o · sq at the routed query positions
 * </pre>
 *
 * <p>No light branch and no residual. Children and parameters: {@code null_q_token (dim)} (if
 * {@code useNullQTokens}), {@code q_router.routing_token (1, dim)}, {@code kv_router.routing_token (R, dim)},
 * {@code heavy_attn.*}. Inputs {@code x (b, n_q, dim)}, {@code context (b, n_ctx, dim)}, optional {@code mask (b,
 * n_q)} and {@code context_mask (b, n_ctx)}; output {@code (b, n_q, dim)}. Per-call overrides: params
 * {@code num_tokens_q}, {@code num_tokens_kv}.
 *
 * <p><b>Difference from the reference:</b> reference 0.8.1–0.11.1 raises NameError ({@code should_route_queries}
 * undefined) on every call; this is the algorithm its code describes, with {@code should_route_queries = n_q > Kq}.
 * Its {@code route_block_size} (the kv router's) works here with any number of blocks (see
 * {@link CoordinateDescentRouter}), and several kv routes gather from their own batch row. The unused
 * {@code num_sets_kv} is not an option.
 */
public final class ConditionalRoutedCrossAttention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int numTokensQ;
    private final int numTokensKv;
    private final Parameter nullQToken;
    private final CoordinateDescentRouter qRouter;
    private final CoordinateDescentRouter kvRouter;
    private final Attention heavyAttn;

    private ConditionalRoutedCrossAttention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        numTokensQ = builder.numTokensQ;
        numTokensKv = builder.numTokensKv;
        nullQToken = builder.useNullQTokens ? addParameter(ConditionalRoutedAttention.nullQToken(dim)) : null;
        qRouter = addChildBlock("q_router", builder.router(1).build());
        CoordinateDescentRouter.Builder kv = builder.router(builder.kvRoutingTokens);
        if (builder.routeBlockSize != null) {
            kv.optRouteBlockSize(builder.routeBlockSize);
        }
        kvRouter = addChildBlock("kv_router", kv.build());
        heavyAttn = addChildBlock("heavy_attn", builder.heavyBranch(Attention.builder()
                .setDim(dim)
                .optDimHead(builder.dimHead)
                .optHeads(builder.heads)
                .optMultiplyKeysByScore(builder.multiplyKeysByScore)
                .optAttentionPrecision(builder.attentionPrecision)
                .build()));
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
     * Applies the routed cross attention.
     *
     * @param ps the parameter store
     * @param x (b, n_q, dim) queries
     * @param context (b, n_ctx, dim) context tokens
     * @param mask null, or boolean (b, n_q), true = valid query
     * @param contextMask null, or boolean (b, n_ctx), true = valid context token
     * @param numTokensQ null, or this call's Kq
     * @param numTokensKv null, or this call's Kkv
     * @param training whether in training mode
     * @return (b, n_q, dim)
     */
    public NDArray apply(
            ParameterStore ps,
            NDArray x,
            NDArray context,
            NDArray mask,
            NDArray contextMask,
            Integer numTokensQ,
            Integer numTokensKv,
            boolean training) {
        Inputs.checkTokens("x", x, dim);
        Inputs.checkTokens("context", context, dim);
        Inputs.checkMask("context_mask", contextMask, context);
        if (context.getShape().get(0) != x.getShape().get(0)) {
            throw new IllegalArgumentException("context batch " + context.getShape() + " must match x batch "
                    + x.getShape());
        }
        int kq = numTokensQ != null ? numTokensQ : this.numTokensQ;
        int kkv = numTokensKv != null ? numTokensKv : this.numTokensKv;
        Inputs.checkCount("num_tokens_kv", kkv);
        RouterReturn q = qRouter.route(ps, x, kq, mask, training);
        NDArray ctx = context;
        NDArray ctxMask = contextMask;
        NDArray scoresKv = null;
        if (context.getShape().get(1) > kkv) {
            RouterReturn kv = kvRouter.route(ps, context, kkv, contextMask, training);
            ctx = kv.routedTokens();
            ctxMask = kv.routedMask();
            scoresKv = kv.scores();
        }
        NDArray o = heavyAttn.attend(ps, q.routedTokens(), ctx, ctxMask, scoresKv, null, null, null, training);
        if (!q.isRouted()) {
            return o;
        }
        o = o.mul(q.scores().expandDims(-1));
        return ConditionalRoutedAttention.scatterQueries(x, o, q.tokenIndex(),
                nullQToken == null ? null : ps.getValue(nullQToken, x.getDevice(), training));
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, {@code context}, optional {@code mask}, optional
     * {@code context_mask} (name the arrays to pass a context mask without a query mask). Params:
     * {@code num_tokens_q}, {@code num_tokens_kv}.
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, Inputs.required(inputs, "x", 0), Inputs.required(inputs, "context", 1),
                Inputs.tensor(inputs, "mask", 2), Inputs.tensor(inputs, "context_mask", 3),
                Inputs.integer(params, "num_tokens_q"), Inputs.integer(params, "num_tokens_kv"), training));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, 1, dim);
        for (var child : getChildren().values()) {
            child.initialize(manager, dataType, in);
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /**
     * Builder; options are the reference's keyword arguments ({@code use_triton}, {@code use_flash_attn}: none),
     * the shared ones in {@link RoutedBuilder}.
     */
    public static final class Builder extends RoutedBuilder<Builder> {
        private int numTokensQ;
        private int numTokensKv;
        private int dimHead = 64;
        private int heads = 8;
        private int kvRoutingTokens = 1;
        private boolean multiplyKeysByScore;
        private boolean useNullQTokens = true;
        private Integer routeBlockSize;
        private AttentionPrecision attentionPrecision = AttentionPrecision.INPUT;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets Kq, the routed queries (required).
         *
         * @param numTokensQ {@code >= 1}
         * @return this builder
         */
        public Builder setNumTokensQ(int numTokensQ) {
            this.numTokensQ = numTokensQ;
            return this;
        }

        /**
         * Sets Kkv, the routed context tokens per route (required).
         *
         * @param numTokensKv {@code >= 1}
         * @return this builder
         */
        public Builder setNumTokensKv(int numTokensKv) {
            this.numTokensKv = numTokensKv;
            return this;
        }

        /**
         * Sets the head dimension.
         *
         * @param dimHead default 64
         * @return this builder
         */
        public Builder optDimHead(int dimHead) {
            this.dimHead = dimHead;
            return this;
        }

        /**
         * Sets the heads.
         *
         * @param heads default 8, divisible by {@code kvRoutingTokens}
         * @return this builder
         */
        public Builder optHeads(int heads) {
            this.heads = heads;
            return this;
        }

        /**
         * Sets the number of context routes R.
         *
         * @param kvRoutingTokens default 1
         * @return this builder
         */
        public Builder optKvRoutingTokens(int kvRoutingTokens) {
            this.kvRoutingTokens = kvRoutingTokens;
            return this;
        }

        /**
         * Whether keys are scaled by the kv scores too.
         *
         * @param multiplyKeysByScore default false
         * @return this builder
         */
        public Builder optMultiplyKeysByScore(boolean multiplyKeysByScore) {
            this.multiplyKeysByScore = multiplyKeysByScore;
            return this;
        }

        /**
         * Whether unrouted queries get the learned null token.
         *
         * @param useNullQTokens default true
         * @return this builder
         */
        public Builder optUseNullQTokens(boolean useNullQTokens) {
            this.useNullQTokens = useNullQTokens;
            return this;
        }

        /**
         * Sets the precision of the heavy attention, as {@link MultiHeadBuilder#optAttentionPrecision} does.
         *
         * @param attentionPrecision default {@link AttentionPrecision#INPUT} (float32, as the reference)
         * @return this builder
         */
        public Builder optAttentionPrecision(AttentionPrecision attentionPrecision) {
            this.attentionPrecision = Builders.required("attentionPrecision", attentionPrecision);
            return this;
        }

        /**
         * Routes the context evenly from blocks of this many tokens.
         *
         * @param routeBlockSize default null
         * @return this builder
         */
        public Builder optRouteBlockSize(Integer routeBlockSize) {
            this.routeBlockSize = routeBlockSize;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if an option is out of range, or heads are not divisible by the routes
         */
        public ConditionalRoutedCrossAttention build() {
            Builders.positive("dim", dim);
            Builders.positive("numTokensQ", numTokensQ);
            Builders.positive("numTokensKv", numTokensKv);
            Builders.positive("kvRoutingTokens", kvRoutingTokens);
            Builders.divisible("heads", heads, "kvRoutingTokens", kvRoutingTokens);
            return new ConditionalRoutedCrossAttention(this);
        }
    }
}
