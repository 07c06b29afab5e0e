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
 * The reference's {@code ConditionalRoutedFeedForward} (spec colt5.md §2.6): a light feed-forward for every token
 * plus a heavy feed-forward for the {@code K} routed tokens only.
 *
 * <pre>
 *   light = light_ff(x)                                   FeedForward(dim, lightFfMult), all tokens
 *   idx, sc, xr = router(x, K, mask)
 *   heavy[b, idx[b, j]] = heavy_ff(xr[b, j]) · sc[b, j]   FeedForward(dim, heavyFfMult), 0 elsewhere
 *   return light + heavy                                  (no residual; n &lt;= K: every token is heavy)
 * </pre>
 *
 * <p>Children: {@code router} ({@code router.routing_token (1, dim)}), {@code light_ff}, {@code heavy_ff}. Input
 * {@code x (b, n, dim)}, optional {@code mask (b, n)}; output {@code (b, n, dim)}. The per-call override of K is
 * the param {@code num_heavy_tokens} (or {@link #apply}'s argument).
 */
public final class ConditionalRoutedFeedForward extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int numHeavyTokens;
    private final CoordinateDescentRouter router;
    private final FeedForward lightFf;
    private final FeedForward heavyFf;

    private ConditionalRoutedFeedForward(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        numHeavyTokens = builder.numHeavyTokens;
        router = addChildBlock("router", builder.router(1).build());
        lightFf = addChildBlock("light_ff", FeedForward.builder().setDim(dim).optMult(builder.lightFfMult).build());
        heavyFf = addChildBlock("heavy_ff",
                builder.heavyBranch(FeedForward.builder().setDim(dim).optMult(builder.heavyFfMult).build()));
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
     * Applies the routed feed-forward.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyTokens null for the configured K, or the number of tokens to route in this call
     * @param training whether in training mode
     * @return (b, n, dim) light + heavy output
     */
    public NDArray apply(ParameterStore ps, NDArray x, NDArray mask, Integer numHeavyTokens, boolean training) {
        return applyWithRouting(ps, x, mask, numHeavyTokens, training).output();
    }

    /**
     * As {@link #apply}, also returning the router's choice ({@link RoutedOutput#ffIndices()}).
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid
     * @param numHeavyTokens null for the configured K, or the number of tokens to route in this call
     * @param training whether in training mode
     * @return the (b, n, dim) output and the (b, K) routed positions
     */
    public RoutedOutput applyWithRouting(
            ParameterStore ps, NDArray x, NDArray mask, Integer numHeavyTokens, boolean training) {
        Inputs.checkTokens("x", x, dim);
        int k = numHeavyTokens != null ? numHeavyTokens : this.numHeavyTokens;
        NDArray light = lightFf.apply(ps, x, training);
        RouterReturn routed = router.route(ps, x, k, mask, training);
        NDArray heavy = heavyFf.apply(ps, routed.routedTokens(), training).mul(routed.scores().expandDims(-1));
        // light + (heavy at the routed rows, 0 elsewhere), without materialising the zero-filled heavy output
        NDArray out = routed.isRouted()
                ? Tensors.addAtTokens(light, routed.tokenIndex(), heavy)
                : light.add(heavy);
        return new RoutedOutput(out, null, null, routed.indicesOrAll());
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, optional {@code mask}. Params: {@code num_heavy_tokens},
     * {@code return_routing} (then the output is followed by {@code ff_indices}, see {@link RoutedOutput}).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        RoutedOutput out = applyWithRouting(ps, Inputs.required(inputs, "x", 0), Inputs.tensor(inputs, "mask", 1),
                Inputs.integer(params, "num_heavy_tokens"), training);
        return Inputs.flag(params, "return_routing") ? out.toNDList() : new NDList(out.output());
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, 1, dim);
        router.initialize(manager, dataType, in);
        lightFf.initialize(manager, dataType, in);
        heavyFf.initialize(manager, dataType, in);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /**
     * Builder; options are the reference's keyword arguments ({@code use_triton}: see the router's backend), the
     * shared ones in {@link RoutedBuilder}.
     */
    public static final class Builder extends RoutedBuilder<Builder> {
        private int numHeavyTokens;
        private double lightFfMult = 0.5;
        private double heavyFfMult = 4;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets K, the number of tokens routed to the heavy feed-forward (required).
         *
         * @param numHeavyTokens {@code >= 1}
         * @return this builder
         */
        public Builder setNumHeavyTokens(int numHeavyTokens) {
            this.numHeavyTokens = numHeavyTokens;
            return this;
        }

        /**
         * Sets the light feed-forward's hidden multiplier.
         *
         * @param lightFfMult default 0.5
         * @return this builder
         */
        public Builder optLightFfMult(double lightFfMult) {
            this.lightFfMult = lightFfMult;
            return this;
        }

        /**
         * Sets the heavy feed-forward's hidden multiplier.
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
        public ConditionalRoutedFeedForward build() {
            Builders.positive("dim", dim);
            Builders.positive("numHeavyTokens", numHeavyTokens);
            return new ConditionalRoutedFeedForward(this);
        }
    }
}
