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
 * The reference's {@code ConditionalRoutedAutoregressiveAttention} (spec colt5.md §1.8, §2.9): causal routed
 * attention, routed window by window so that no window sees a later one.
 *
 * <pre>
 *   light = light_attn(x)       causal LocalMHA, window lightWindowSize: previous window + own window up to i
 *   pad x to P = ⌈n/w⌉·w, w = heavyWindowSize; W = P/w windows
 *   for every query window m = 1..W−1 (window 0 has no past):   B' = b·(W−1) rows, ordered (batch, window)
 *     queries   Q_m = window m, valid where position < n;   iq, sq, xq       = q_router(Q_m, Kq)
 *     keys/vals KV_m = all P positions, valid where position < m·w (strictly earlier windows)
 *                                                            ikv, skv, xkv, m = kv_router(KV_m, Kkv)   R routes
 *     o = heavy_attn(xq, xkv, m, skv, sq if multiplyQueriesByScore, rotary of absolute positions) · sq
 *     heavy_m = null_q_token (or 0) at unrouted queries, o at routed ones
 *   heavy = [0 for window 0, heavy_1, ..., heavy_{W−1}] cut to n
 *   return light + heavy
 * </pre>
 *
 * <p>Input {@code x (b, n, dim)} with {@code n ≥ heavyWindowSize}; output {@code (b, n, dim)}. No mask. When
 * {@code n = heavyWindowSize} there is no past window and the heavy branch is 0. Per-call overrides: params
 * {@code num_heavy_tokens_q}, {@code num_heavy_tokens_kv}, {@code random_route} (negative control).
 *
 * <p>Causality: keys/values of window {@code m} come only from earlier windows and the light branch is causal, so
 * no token influences an output of an earlier window. Within a window, query routing is a top-Kq over the window's
 * queries (the reference's design), so with {@code Kq < heavyWindowSize} a later token of the same window can change
 * whether an earlier one is routed; with {@code Kq ≥ heavyWindowSize} every output depends only on its own and
 * earlier tokens.
 *
 * <p>Fixes against the reference: with several kv routes the reference gathers the tokens and the causal mask of
 * row {@code ⌊i/R⌋} for row {@code i} (another window, even another batch element); here every route gathers from
 * its own window row with its own mask ({@link CoordinateDescentRouter}). A sequence shorter than the heavy window
 * is rejected with a clear message instead of a shape error.
 *
 * <p>{@code state_dict}: {@code null_q_token (dim)} (if {@code useNullQTokens}), {@code light_attn.norm.weight/bias},
 * {@code light_attn.to_qkv.weight}, {@code light_attn.to_out.weight}, {@code q_router.routing_token (1, dim)},
 * {@code kv_router.routing_token (R, dim)}, {@code heavy_attn.*}, {@code rotary_emb.inv_freq} (if {@code rotaryEmb}).
 */
public final class ConditionalRoutedAutoregressiveAttention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int numHeavyTokensQ;
    private final int numHeavyTokensKv;
    private final int heavyWindowSize;
    private final boolean multiplyQueriesByScore;
    private final LocalMHA lightAttn;
    private final Parameter nullQToken;
    private final CoordinateDescentRouter qRouter;
    private final CoordinateDescentRouter kvRouter;
    private final Attention heavyAttn;
    private final RotaryEmbedding rotaryEmb;

    private ConditionalRoutedAutoregressiveAttention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        numHeavyTokensQ = builder.numHeavyTokensQ;
        numHeavyTokensKv = builder.numHeavyTokensKv;
        heavyWindowSize = builder.heavyWindowSize != null ? builder.heavyWindowSize : builder.lightWindowSize;
        multiplyQueriesByScore = builder.multiplyQueriesByScore;
        lightAttn = addChildBlock("light_attn", LocalMHA.builder()
                .setDim(dim)
                .optDimHead(builder.lightDimHead)
                .optHeads(builder.lightHeads)
                .setWindowSize(builder.lightWindowSize)
                .optPrenorm(true)
                .optCausal(true)
                .optLookBackward(1)
                .optLookForward(0)
                .optExactWindowsize(false)
                .optAttentionPrecision(builder.attentionPrecision)
                .build());
        nullQToken = builder.useNullQTokens ? addParameter(ConditionalRoutedAttention.nullQToken(dim)) : null;
        qRouter = addChildBlock("q_router", builder.router(1).build());
        kvRouter = addChildBlock("kv_router", builder.router(builder.numRoutedKv).build());
        heavyAttn = addChildBlock("heavy_attn", builder.heavyAttention());
        rotaryEmb = builder.rotaryEmb ? addChildBlock("rotary_emb", new RotaryEmbedding(builder.heavyDimHead)) : null;
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
     * Applies the causal routed attention.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens, {@code n ≥ heavyWindowSize}
     * @param numHeavyTokensQ null for the configured Kq, or the queries to route per window in this call
     * @param numHeavyTokensKv null for the configured Kkv, or the keys/values to route per window and route
     * @param randomRoute negative control: route by random scores instead of the learned ones
     * @param training whether in training mode
     * @return (b, n, dim) light + heavy output
     * @throws IllegalArgumentException if {@code x} is not {@code (b, n, dim)} or {@code n < heavyWindowSize}
     */
    public NDArray apply(
            ParameterStore ps,
            NDArray x,
            Integer numHeavyTokensQ,
            Integer numHeavyTokensKv,
            boolean randomRoute,
            boolean training) {
        return applyWithRouting(ps, x, numHeavyTokensQ, numHeavyTokensKv, randomRoute, training).output();
    }

    /**
     * As {@link #apply}, also returning the routers' choices as absolute positions in {@code x}: {@code qIndices
     * (b, W−1, Kq)} (the queries routed in windows 1..W−1; all {@code w} positions of a window when unrouted) and
     * {@code kvIndices (b, W−1, [R,] Kkv)} (the past tokens each window attends to; every padded position when
     * unrouted, of which those at or after the window's start are masked). Both are null when {@code n} equals the
     * heavy window (no heavy branch).
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens, {@code n ≥ heavyWindowSize}
     * @param numHeavyTokensQ null for the configured Kq, or the queries to route per window in this call
     * @param numHeavyTokensKv null for the configured Kkv, or the keys/values to route per window and route
     * @param randomRoute negative control: route by random scores instead of the learned ones
     * @param training whether in training mode
     * @return the output and the routing indices (no {@code ffIndices})
     * @throws IllegalArgumentException if {@code x} is not {@code (b, n, dim)} or {@code n < heavyWindowSize}
     */
    public RoutedOutput applyWithRouting(
            ParameterStore ps,
            NDArray x,
            Integer numHeavyTokensQ,
            Integer numHeavyTokensKv,
            boolean randomRoute,
            boolean training) {
        Inputs.checkTokens("x", x, dim);
        long b = x.getShape().get(0);
        long n = x.getShape().get(1);
        long w = heavyWindowSize;
        if (n < w) {
            throw new IllegalArgumentException("sequence length (" + n + ") must be >= heavyWindowSize (" + w
                    + "); x has shape " + x.getShape());
        }
        int kq = numHeavyTokensQ != null ? numHeavyTokensQ : this.numHeavyTokensQ;
        int kkv = numHeavyTokensKv != null ? numHeavyTokensKv : this.numHeavyTokensKv;
        Inputs.checkCount("num_heavy_tokens_q", kq);
        Inputs.checkCount("num_heavy_tokens_kv", kkv);
        NDArray light = lightAttn.apply(ps, x, null, training);
        long windows = (n + w - 1) / w;
        if (windows == 1) {
            return new RoutedOutput(light, null, null, null);
        }
        long p = windows * w;
        long rows = b * (windows - 1);
        NDManager manager = x.getManager();
        NDArray padded = p == n ? x : x.concat(manager.zeros(new Shape(b, p - n, dim), x.getDataType()), 1);
        NDArray position = manager.arange(0, p, 1, DataType.INT64, x.getDevice());

        NDArray q = padded.reshape(b, windows, w, dim).get(":, 1:").reshape(rows, w, dim);
        NDArray qMask = perRow(position.lt(Tensors.index(position, n)).reshape(windows, w).get("1:"), b, rows);
        NDArray kv = padded.expandDims(1).broadcast(new Shape(b, windows - 1, p, dim)).reshape(rows, p, dim);
        NDArray windowStart = manager.arange(w, p, w, DataType.INT64, x.getDevice()).expandDims(1);
        NDArray kvMask = perRow(position.expandDims(0).lt(windowStart), b, rows);

        RouterReturn qr = qRouter.route(ps, q, kq, qMask, null, randomRoute, false, training);
        RouterReturn kvr = kvRouter.route(ps, kv, kkv, kvMask, null, randomRoute, false, training);
        NDArray qPos = null;
        NDArray kPos = null;
        if (rotaryEmb != null) {
            NDArray angles = rotaryEmb.freqs(ps, p, x, training);
            long dh = angles.getShape().get(1);
            NDArray windowAngles = perRow(angles.reshape(windows, w, dh).get("1:"), b, rows);
            qPos = (qr.isRouted() ? Tensors.gatherTokens(windowAngles, qr.indices()) : windowAngles).expandDims(1);
            kPos = kvr.isRouted() ? keyPositions(angles.get(kvr.indices())) : angles;
        }
        NDArray o = heavyAttn.attend(ps, qr.routedTokens(), kvr.routedTokens(), kvr.routedMask(), kvr.scores(),
                multiplyQueriesByScore ? qr.scores() : null, qPos, kPos, training);
        NDArray heavy = o;
        if (qr.isRouted()) {
            heavy = ConditionalRoutedAttention.scatterQueries(q, o.mul(qr.scores().expandDims(-1)), qr.tokenIndex(),
                    nullQToken == null ? null : ps.getValue(nullQToken, x.getDevice(), training));
        }
        heavy = heavy.reshape(b, (windows - 1) * w, dim).get(":, :" + (n - w));
        heavy = manager.zeros(new Shape(b, w, dim), x.getDataType()).concat(heavy, 1);
        NDArray qIndices = qr.indicesOrAll().add(perRow(windowStart, b, rows));
        NDArray kvIndices = kvr.indicesOrAll();
        return new RoutedOutput(light.add(heavy),
                qIndices.reshape(new Shape(b, windows - 1).addAll(qIndices.getShape().slice(1))),
                kvIndices.reshape(new Shape(b, windows - 1).addAll(kvIndices.getShape().slice(1))), null);
    }

    /** Repeats a per-window array {@code (W−1, ...)} for every batch element: {@code (b·(W−1), ...)}. */
    private static NDArray perRow(NDArray perWindow, long b, long rows) {
        Shape s = perWindow.getShape();
        return perWindow.expandDims(0).broadcast(new Shape(b).addAll(s)).reshape(new Shape(rows).addAll(s.slice(1)));
    }

    /** Angles of routed keys, (B', K, dh) or (B', R, K, dh), as (B', R, 1, K, dh) for {@link Attention#attend}. */
    private static NDArray keyPositions(NDArray gathered) {
        Shape s = gathered.getShape();
        return s.dimension() == 3 ? gathered.reshape(s.get(0), 1, 1, s.get(1), s.get(2)) : gathered.expandDims(2);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Input: {@code x}. Params: {@code num_heavy_tokens_q}, {@code num_heavy_tokens_kv}, {@code random_route},
     * {@code return_routing} (then the output is followed by {@code q_indices} and {@code kv_indices}, see
     * {@link #applyWithRouting}).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        RoutedOutput out = applyWithRouting(ps, Inputs.required(inputs, "x", 0),
                Inputs.integer(params, "num_heavy_tokens_q"), Inputs.integer(params, "num_heavy_tokens_kv"),
                Inputs.flag(params, "random_route"), training);
        return Inputs.flag(params, "return_routing") ? out.toNDList() : new NDList(out.output());
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
        private Integer heavyWindowSize;
        private boolean rotaryEmb;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the heavy window w: queries are routed per window of w tokens, keys/values from earlier windows.
         *
         * @param heavyWindowSize null (default) for {@code lightWindowSize}
         * @return this builder
         */
        public Builder optHeavyWindowSize(Integer heavyWindowSize) {
            this.heavyWindowSize = heavyWindowSize;
            return this;
        }

        /**
         * Whether the heavy branch uses rotary embeddings of the tokens' absolute positions.
         *
         * @param rotaryEmb default false
         * @return this builder
         */
        public Builder optRotaryEmb(boolean rotaryEmb) {
            this.rotaryEmb = rotaryEmb;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if an option is out of range, or heavy heads are not divisible by the
         *     kv routes
         */
        public ConditionalRoutedAutoregressiveAttention build() {
            validate();
            Builders.positive("lightWindowSize", lightWindowSize);
            if (heavyWindowSize != null) {
                Builders.positive("heavyWindowSize", heavyWindowSize);
            }
            return new ConditionalRoutedAutoregressiveAttention(this);
        }
    }
}
