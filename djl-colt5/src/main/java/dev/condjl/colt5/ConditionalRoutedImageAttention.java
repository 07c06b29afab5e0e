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

/**
 * The reference's {@code ConditionalRoutedImageAttention} (spec colt5.md §1.7, §2.10): routed attention over a
 * feature map, computed window by window.
 *
 * <pre>
 *   X = windows of x: (b·(H/w)·(W/w), w², d), each w×w window flattened row-major, ordered (batch, row, column)
 *   light = light_attn(X)                  full SelfAttention (RMSNorm prenorm) inside each window
 *   iq, sq, xq       = q_router(X, Kq)     routing is per window, as in the reference: Kq and Kkv are per window
 *   ikv, skv, xkv, m = kv_router(X, Kkv)   R = numRoutedKv routes
 *   o = heavy_attn(xq, xkv, m, skv, sq if multiplyQueriesByScore) · sq
 *   heavy = null_q_token (or 0) at unrouted positions, o at routed ones
 *   out = unwindow(light + heavy)
 * </pre>
 *
 * <p>Input {@code x (b, H, W, d)}, or {@code (b, d, H, W)} with {@code channelFirst}; the output has the input's
 * layout. H and W must be multiples of {@code lightWindowSize}. No mask (the reference's would have to be shaped like
 * the packed windows). Per-call overrides: params {@code num_heavy_tokens_q}, {@code num_heavy_tokens_kv}.
 *
 * <p>Fixes against the reference: when {@code Kq ≥ w²} no query is routed and the reference's scatter crashes
 * (RuntimeError; its README image and ViT examples hit this); here every token of the window goes through the heavy
 * branch (score 1). Several kv routes gather from their own window ({@link CoordinateDescentRouter}).
 *
 * <p>{@code state_dict}: {@code null_q_token (d)} (if {@code useNullQTokens}), {@code light_attn.norm.gamma},
 * {@code light_attn.to_qkv.weight}, {@code light_attn.to_out.weight}, {@code q_router.routing_token (1, d)},
 * {@code kv_router.routing_token (R, d)}, {@code heavy_attn.*}.
 */
public final class ConditionalRoutedImageAttention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int numHeavyTokensQ;
    private final int numHeavyTokensKv;
    private final int lightWindowSize;
    private final boolean multiplyQueriesByScore;
    private final boolean channelFirst;
    private final SelfAttention lightAttn;
    private final Parameter nullQToken;
    private final CoordinateDescentRouter qRouter;
    private final CoordinateDescentRouter kvRouter;
    private final Attention heavyAttn;

    private ConditionalRoutedImageAttention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        numHeavyTokensQ = builder.numHeavyTokensQ;
        numHeavyTokensKv = builder.numHeavyTokensKv;
        lightWindowSize = builder.lightWindowSize;
        multiplyQueriesByScore = builder.multiplyQueriesByScore;
        channelFirst = builder.channelFirst;
        lightAttn = addChildBlock("light_attn", SelfAttention.builder()
                .setDim(dim)
                .optDimHead(builder.lightDimHead)
                .optHeads(builder.lightHeads)
                .optPrenorm(true)
                .optAttentionPrecision(builder.attentionPrecision)
                .build());
        nullQToken = builder.useNullQTokens ? addParameter(ConditionalRoutedAttention.nullQToken(dim)) : null;
        qRouter = addChildBlock("q_router", builder.router(1).build());
        kvRouter = addChildBlock("kv_router", builder.router(builder.numRoutedKv).build());
        heavyAttn = addChildBlock("heavy_attn", builder.heavyAttention());
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
     * Applies the routed image attention.
     *
     * @param ps the parameter store
     * @param x {@code (b, H, W, dim)}, or {@code (b, dim, H, W)} with {@code channelFirst}
     * @param numHeavyTokensQ null for the configured Kq, or the queries to route per window in this call
     * @param numHeavyTokensKv null for the configured Kkv, or the keys/values to route per window and route
     * @param training whether in training mode
     * @return light + heavy output in the input's layout
     * @throws IllegalArgumentException if {@code x} is not 4-D with {@code dim} channels, or H or W is not a multiple
     *     of {@code lightWindowSize}
     */
    public NDArray apply(
            ParameterStore ps, NDArray x, Integer numHeavyTokensQ, Integer numHeavyTokensKv, boolean training) {
        NDArray map = channelLast(x);
        Shape s = map.getShape();
        long b = s.get(0);
        long h = s.get(1);
        long w = s.get(2);
        int win = lightWindowSize;
        if (h % win != 0 || w % win != 0) {
            throw new IllegalArgumentException("feature map height and width (" + h + ", " + w
                    + ") must be divisible by lightWindowSize (" + win + "); x has shape " + x.getShape());
        }
        int kq = numHeavyTokensQ != null ? numHeavyTokensQ : this.numHeavyTokensQ;
        int kkv = numHeavyTokensKv != null ? numHeavyTokensKv : this.numHeavyTokensKv;
        Inputs.checkCount("num_heavy_tokens_q", kq);
        Inputs.checkCount("num_heavy_tokens_kv", kkv);

        NDArray windows = map.reshape(b, h / win, win, w / win, win, dim)
                .transpose(0, 1, 3, 2, 4, 5)
                .reshape(-1, (long) win * win, dim);
        NDArray light = lightAttn.apply(ps, windows, training);
        RouterReturn q = qRouter.route(ps, windows, kq, null, training);
        RouterReturn kv = kvRouter.route(ps, windows, kkv, null, training);
        NDArray o = heavyAttn.attend(ps, q.routedTokens(), kv.routedTokens(), kv.routedMask(), kv.scores(),
                multiplyQueriesByScore ? q.scores() : null, null, null, training);
        o = o.mul(q.scores().expandDims(-1));
        NDArray heavy = q.isRouted()
                ? ConditionalRoutedAttention.scatterQueries(windows, o, q.tokenIndex(),
                        nullQToken == null ? null : ps.getValue(nullQToken, x.getDevice(), training))
                : o;
        NDArray out = light.add(heavy)
                .reshape(b, h / win, w / win, win, win, dim)
                .transpose(0, 1, 3, 2, 4, 5)
                .reshape(b, h, w, dim);
        return channelFirst ? out.transpose(0, 3, 1, 2) : out;
    }

    /** Checks the layout and returns {@code (b, H, W, dim)}. */
    private NDArray channelLast(NDArray x) {
        Shape s = x.getShape();
        int channels = channelFirst ? 1 : 3;
        if (s.dimension() != 4 || s.get(channels) != dim) {
            throw new IllegalArgumentException("x must have shape " + (channelFirst ? "(b, " + dim + ", H, W)"
                    : "(b, H, W, " + dim + ")") + ", got " + s);
        }
        return channelFirst ? x.transpose(0, 2, 3, 1) : x;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Input: {@code x}. Params: {@code num_heavy_tokens_q}, {@code num_heavy_tokens_kv}.
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, Inputs.required(inputs, "x", 0), Inputs.integer(params, "num_heavy_tokens_q"),
                Inputs.integer(params, "num_heavy_tokens_kv"), training));
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
     * the shared ones in {@link RoutedTokensBuilder}.
     */
    public static final class Builder extends RoutedTokensBuilder<Builder> {
        private boolean channelFirst;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Whether the feature map is {@code (b, d, H, W)} instead of {@code (b, H, W, d)}.
         *
         * @param channelFirst default false
         * @return this builder
         */
        public Builder optChannelFirst(boolean channelFirst) {
            this.channelFirst = channelFirst;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if an option is out of range, or heavy heads are not divisible by the
         *     kv routes
         */
        public ConditionalRoutedImageAttention build() {
            validate();
            Builders.positive("lightWindowSize", lightWindowSize);
            return new ConditionalRoutedImageAttention(this);
        }
    }
}
