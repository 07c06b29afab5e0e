package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

/**
 * The reference's {@code ConditionalRoutedAttention} (spec colt5.md §2.7): light local attention over every token
 * plus heavy attention between routed queries and routed keys/values.
 *
 * <pre>
 *   light = light_attn(x, mask)            LocalMHA, window lightWindowSize/2, 1 back, 1 forward, exact (0 if off)
 *   iq, sq, xq       = q_router(x, Kq, mask)
 *   ikv, skv, xkv, m = kv_router(x, Kkv, mask)         R = numRoutedKv routes, each feeding heavyHeads/R heads
 *   o = heavy_attn(xq, xkv, m, skv, sq if multiplyQueriesByScore, rotary by original positions) · sq
 *   heavy = null_q_token (or 0) everywhere, o at the routed query positions (o itself when not routed)
 *   return light + heavy
 * </pre>
 *
 * <p>Children and parameters ({@code state_dict} keys): {@code null_q_token (dim)} (if {@code useNullQTokens}),
 * {@code light_attn.*} (if {@code hasLightAttn}), {@code q_router.routing_token (1, dim)},
 * {@code kv_router.routing_token (R, dim)}, {@code heavy_attn.*}, {@code rotary_emb.inv_freq} (if
 * {@code rotaryEmb}). Input {@code x (b, n, dim)}, optional {@code mask (b, n)}; output {@code (b, n, dim)}. The
 * query mask is not applied to the heavy branch: padded queries attend too, as in the reference. Per-call overrides:
 * params {@code num_heavy_tokens_q}, {@code num_heavy_tokens_kv}.
 *
 * <p>Differs from the reference only through its parts: several kv routes gather from their own batch row
 * ({@link CoordinateDescentRouter}), and the light branch masks its zero padding ({@link LocalAttention}).
 */
public final class ConditionalRoutedAttention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int numHeavyTokensQ;
    private final int numHeavyTokensKv;
    private final boolean multiplyQueriesByScore;
    private final LocalMHA lightAttn;
    private final Parameter nullQToken;
    private final CoordinateDescentRouter qRouter;
    private final CoordinateDescentRouter kvRouter;
    private final Attention heavyAttn;
    private final RotaryEmbedding rotaryEmb;

    private ConditionalRoutedAttention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        numHeavyTokensQ = builder.numHeavyTokensQ;
        numHeavyTokensKv = builder.numHeavyTokensKv;
        multiplyQueriesByScore = builder.multiplyQueriesByScore;
        lightAttn = builder.hasLightAttn
                ? addChildBlock("light_attn", LocalMHA.builder()
                        .setDim(dim)
                        .optDimHead(builder.lightDimHead)
                        .optHeads(builder.lightHeads)
                        .setWindowSize(builder.lightWindowSize / 2)
                        .optPrenorm(true)
                        .optCausal(false)
                        .optLookBackward(1)
                        .optLookForward(1)
                        .optAttentionPrecision(builder.attentionPrecision)
                        .build())
                : null;
        nullQToken = builder.useNullQTokens ? addParameter(nullQToken(dim)) : null;
        qRouter = addChildBlock("q_router", builder.router(1).build());
        kvRouter = addChildBlock("kv_router", builder.router(builder.numRoutedKv).build());
        heavyAttn = addChildBlock("heavy_attn", builder.heavyAttention());
        rotaryEmb = builder.rotaryEmb ? addChildBlock("rotary_emb", new RotaryEmbedding(builder.heavyDimHead)) : null;
    }

    /**
     * The learned output for unrouted queries, {@code null_q_token (dim)} drawn from N(0, 1).
     *
     * @param dim model width
     * @return the parameter
     */
    static Parameter nullQToken(int dim) {
        return Parameter.builder().setName("null_q_token").setType(Parameter.Type.OTHER)
                .optInitializer(new NormalInitializer(1f)).optShape(new Shape(dim)).build();
    }

    /**
     * Writes the heavy outputs of routed queries back into the sequence.
     *
     * @param x (b, n, d) the sequence (for shape, manager and device)
     * @param out (b, k, d) outputs of the routed queries
     * @param index (b, k, d) their positions, the query router's {@link RouterReturn#tokenIndex}
     * @param nullQ null (unrouted positions get 0), or the (d) null-query value for unrouted positions
     * @return (b, n, d)
     */
    static NDArray scatterQueries(NDArray x, NDArray out, NDArray index, NDArray nullQ) {
        NDArray base = nullQ == null ? x.zerosLike() : Tensors.own(nullQ.broadcast(x.getShape()), x);
        return Tensors.scatterTokens(base, index, out);
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
     * Applies the routed attention.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyTokensQ null for the configured Kq, or the queries to route in this call
     * @param numHeavyTokensKv null for the configured Kkv, or the keys/values to route (per route) in this call
     * @param training whether in training mode
     * @return (b, n, dim) light + heavy output
     */
    public NDArray apply(
            ParameterStore ps,
            NDArray x,
            NDArray mask,
            Integer numHeavyTokensQ,
            Integer numHeavyTokensKv,
            boolean training) {
        return applyWithRouting(ps, x, mask, numHeavyTokensQ, numHeavyTokensKv, training).output();
    }

    /**
     * As {@link #apply}, also returning the routers' choices ({@link RoutedOutput#qIndices()},
     * {@link RoutedOutput#kvIndices()}).
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyTokensQ null for the configured Kq, or the queries to route in this call
     * @param numHeavyTokensKv null for the configured Kkv, or the keys/values to route (per route) in this call
     * @param training whether in training mode
     * @return the (b, n, dim) output, the (b, Kq) query positions and the (b, [R,] Kkv) key/value positions
     */
    public RoutedOutput applyWithRouting(
            ParameterStore ps,
            NDArray x,
            NDArray mask,
            Integer numHeavyTokensQ,
            Integer numHeavyTokensKv,
            boolean training) {
        Inputs.checkTokens("x", x, dim);
        Inputs.checkMask("mask", mask, x);
        int kq = numHeavyTokensQ != null ? numHeavyTokensQ : this.numHeavyTokensQ;
        int kkv = numHeavyTokensKv != null ? numHeavyTokensKv : this.numHeavyTokensKv;
        NDArray light = lightAttn == null ? null : lightAttn.apply(ps, x, mask, training);
        long n = x.getShape().get(1);
        // both routers score the same tokens: with the same cosine scoring, x is normalised once
        NDArray unit = n > kq && n > kkv && qRouter.scoresLike(kvRouter) ? qRouter.unitTokens(x) : null;
        RouterReturn q = qRouter.route(ps, x, kq, mask, training, unit);
        RouterReturn kv = kvRouter.route(ps, x, kkv, mask, training, unit);
        NDArray qPos = null;
        NDArray kPos = null;
        if (rotaryEmb != null) {
            NDArray pos = rotaryEmb.freqs(ps, x.getShape().get(1), x, training);
            qPos = q.isRouted() ? pos.get(q.indices()).expandDims(1) : pos;
            kPos = !kv.isRouted() ? pos : keyPositions(pos.get(kv.indices()));
        }
        NDArray o = heavyAttn.attend(ps, q.routedTokens(), kv.routedTokens(), kv.routedMask(), kv.scores(),
                multiplyQueriesByScore ? q.scores() : null, qPos, kPos, training);
        o = o.mul(q.scores().expandDims(-1));
        NDArray nullQ = nullQToken == null ? null : ps.getValue(nullQToken, x.getDevice(), training);
        NDArray out;
        if (!q.isRouted()) {
            out = light == null ? o : light.add(o);
        } else if (light == null) {
            out = scatterQueries(x, o, q.tokenIndex(), nullQ);
        } else if (nullQ == null) {
            out = Tensors.addAtTokens(light, q.tokenIndex(), o);
        } else {
            // the reference's sum: light + (o at the routed rows, null_q_token elsewhere)
            out = light.add(scatterQueries(x, o, q.tokenIndex(), nullQ));
        }
        return new RoutedOutput(out, q.indicesOrAll(), kv.indicesOrAll(), null);
    }

    /** Angles of routed keys, (b, K, dh) or (b, R, K, dh), as (b, R, 1, K, dh) for {@link Attention#attend}. */
    private static NDArray keyPositions(NDArray gathered) {
        Shape s = gathered.getShape();
        return s.dimension() == 3 ? gathered.reshape(s.get(0), 1, 1, s.get(1), s.get(2)) : gathered.expandDims(2);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, optional {@code mask}. Params: {@code num_heavy_tokens_q},
     * {@code num_heavy_tokens_kv}, {@code return_routing} (then the output is followed by {@code q_indices} and
     * {@code kv_indices}, see {@link RoutedOutput}).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        RoutedOutput out = applyWithRouting(ps, Inputs.required(inputs, "x", 0), Inputs.tensor(inputs, "mask", 1),
                Inputs.integer(params, "num_heavy_tokens_q"), Inputs.integer(params, "num_heavy_tokens_kv"),
                training);
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
        private boolean hasLightAttn = true;
        private boolean rotaryEmb;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Whether the light local attention exists (0.11.0).
         *
         * @param hasLightAttn default true
         * @return this builder
         */
        public Builder optHasLightAttn(boolean hasLightAttn) {
            this.hasLightAttn = hasLightAttn;
            return this;
        }

        /**
         * Whether the heavy branch uses rotary embeddings of the tokens' original positions.
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
        public ConditionalRoutedAttention build() {
            validate();
            if (hasLightAttn && lightWindowSize < 2) {
                throw new IllegalArgumentException("lightWindowSize (" + lightWindowSize + ") must be >= 2");
            }
            return new ConditionalRoutedAttention(this);
        }
    }
}
