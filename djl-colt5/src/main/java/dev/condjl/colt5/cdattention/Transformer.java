package dev.condjl.colt5.cdattention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import dev.condjl.colt5.LayerNorm;
import dev.condjl.colt5.Sequential;
import dev.condjl.topk.Backend;

/**
 * The causal language model of coordinate-descent-attention 0.0.11 (spec colt5.md §7.3).
 *
 * <p>For token ids {@code (b, n)}, {@code n ≤ seqLen}: {@code x = token_emb(ids) + pos_emb(0..n-1)} (learned
 * absolute positions); per layer {@code x = attn(x) + x}, then {@code x = ff(x) + x}; logits
 * {@code to_logits(x) = Linear(LayerNorm(x)) (b, n, numTokens)}. Attention and feed-forward are {@link Attention}
 * and {@link FeedForward}; both get {@code coorDescentIters} and {@code coorDescentEps}, and keep their own ε
 * schedule defaults ({@code epsInit = 4}, {@code epsDecay = 0.7}).
 *
 * <p>{@code state_dict}: {@code token_emb.weight (numTokens, d)}, {@code pos_emb.weight (seqLen, d)},
 * {@code layers.L.0.*} (attention), {@code layers.L.1.*} (feed-forward), {@code to_logits.0.weight/bias},
 * {@code to_logits.1.weight (numTokens, d)}, {@code to_logits.1.bias}.
 */
public final class Transformer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final long numTokens;
    private final long dim;
    private final int seqLen;
    private final Embedding tokenEmb;
    private final Embedding posEmb;
    private final Sequential layers;
    private final Sequential toLogits;

    private Transformer(Builder builder) {
        super(VERSION);
        numTokens = builder.numTokens;
        dim = builder.dim;
        seqLen = builder.seqLen;
        tokenEmb = addChildBlock("token_emb", new Embedding(numTokens, dim));
        posEmb = addChildBlock("pos_emb", new Embedding(seqLen, dim));
        layers = addChildBlock("layers", new Sequential());
        for (int i = 0; i < builder.depth; i++) {
            Attention attn = Attention.builder()
                    .setDim(dim)
                    .optDimHead(builder.dimHead)
                    .optHeads(builder.heads)
                    .optUseCoorDescent(builder.attnUseCoorDescent)
                    .optCoorDescentSparsityK(builder.attnCoorDescentSparsityK)
                    .optCoorDescentIters(builder.coorDescentIters)
                    .optCoorDescentEps(builder.coorDescentEps)
                    .optAttnNullKv(builder.attnNullKv)
                    .optLearnedSparsityK(builder.learnedSparsityK)
                    .optCoorDescentBackend(builder.coorDescentBackend)
                    .build();
            FeedForward ff = FeedForward.builder()
                    .setDim(dim)
                    .optMult(builder.ffMult)
                    .optUseCoorDescent(builder.ffUseCoorDescent)
                    .optCoorDescentSparsityK(builder.ffCoorDescentSparsityK)
                    .optCoorDescentIters(builder.coorDescentIters)
                    .optCoorDescentEps(builder.coorDescentEps)
                    .optCoorDescentBackend(builder.coorDescentBackend)
                    .build();
            layers.add(new Layer(attn, ff));
        }
        toLogits = addChildBlock("to_logits", new Sequential());
        toLogits.add(new LayerNorm());
        toLogits.add(Linear.builder().setUnits(numTokens).build());
    }

    /**
     * Creates a builder; {@code numTokens}, {@code dim}, {@code seqLen} and {@code depth} are required.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the longest sequence the position embedding covers.
     *
     * @return {@code seqLen}
     */
    public int getSeqLen() {
        return seqLen;
    }

    /**
     * Returns the vocabulary size.
     *
     * @return {@code numTokens}
     */
    public long getNumTokens() {
        return numTokens;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape ids = inputShapes[0];
        Shape hidden = ids.add(dim);
        tokenEmb.initialize(manager, dataType, ids);
        posEmb.initialize(manager, dataType, new Shape(ids.get(1)));
        layers.initialize(manager, dataType, hidden);
        toLogits.initialize(manager, dataType, hidden);
    }

    /**
     * Computes next-token logits.
     *
     * @param ps the parameter store
     * @param inputs integer token ids {@code (b, n)} with {@code 1 ≤ n ≤ seqLen}
     * @param training whether in training
     * @param params unused
     * @return logits {@code (b, n, numTokens)}
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray ids = inputs.head();
        Shape shape = ids.getShape();
        if (shape.dimension() != 2 || shape.get(1) < 1 || shape.get(1) > seqLen) {
            throw new IllegalArgumentException(
                    "token ids must be (b, n) with 1 <= n <= seqLen (" + seqLen + "), got " + shape);
        }
        NDArray positions = ids.getManager().arange(0, shape.get(1), 1, DataType.INT64);
        NDArray x = tokenEmb.forward(ps, new NDList(ids), training).head()
                .add(posEmb.forward(ps, new NDList(positions), training).head());
        NDList h = layers.forward(ps, new NDList(x), training);
        return toLogits.forward(ps, h, training);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0].add(numTokens)};
    }

    /** One layer ({@code layers.L}): {@code x = attn(x) + x; x = ff(x) + x}, children {@code 0} and {@code 1}. */
    private static final class Layer extends AbstractBlock {

        private final Block attn;
        private final Block ff;

        Layer(Block attn, Block ff) {
            super(VERSION);
            this.attn = addChildBlock("0", attn);
            this.ff = addChildBlock("1", ff);
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            attn.initialize(manager, dataType, inputShapes);
            ff.initialize(manager, dataType, inputShapes);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray x = inputs.head();
            x = attn.forward(ps, new NDList(x), training).head().add(x);
            x = ff.forward(ps, new NDList(x), training).head().add(x);
            return new NDList(x);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /** Builds a {@link Transformer}; option names follow the reference's keyword arguments. */
    public static final class Builder {

        private long numTokens;
        private long dim;
        private int seqLen;
        private int depth;
        private int dimHead = 64;
        private int heads = 8;
        private double ffMult = 4;
        private boolean attnUseCoorDescent;
        private boolean ffUseCoorDescent;
        private double attnCoorDescentSparsityK = 2;
        private double ffCoorDescentSparsityK = 2;
        private int coorDescentIters = 15;
        private double coorDescentEps = 0.1;
        private int attnNullKv;
        private boolean learnedSparsityK;
        private Backend coorDescentBackend = Backend.AUTO;

        private Builder() {}

        /**
         * Sets the vocabulary size ({@code num_tokens}); required.
         *
         * @param numTokens at least 1
         * @return this builder
         */
        public Builder setNumTokens(long numTokens) {
            this.numTokens = numTokens;
            return this;
        }

        /**
         * Sets the model dimension ({@code dim}); required.
         *
         * @param dim at least 1
         * @return this builder
         */
        public Builder setDim(long dim) {
            this.dim = dim;
            return this;
        }

        /**
         * Sets the maximum sequence length ({@code seq_len}); required.
         *
         * @param seqLen at least 1
         * @return this builder
         */
        public Builder setSeqLen(int seqLen) {
            this.seqLen = seqLen;
            return this;
        }

        /**
         * Sets the number of layers ({@code depth}); required.
         *
         * @param depth at least 1
         * @return this builder
         */
        public Builder setDepth(int depth) {
            this.depth = depth;
            return this;
        }

        /**
         * Sets the head dimension ({@code dim_head}); default 64.
         *
         * @param dimHead at least 1
         * @return this builder
         */
        public Builder optDimHead(int dimHead) {
            this.dimHead = dimHead;
            return this;
        }

        /**
         * Sets the number of heads ({@code heads}); default 8.
         *
         * @param heads at least 1
         * @return this builder
         */
        public Builder optHeads(int heads) {
            this.heads = heads;
            return this;
        }

        /**
         * Sets the feed-forward multiplier ({@code ff_mult}); default 4.
         *
         * @param ffMult {@code > 0}
         * @return this builder
         */
        public Builder optFfMult(double ffMult) {
            this.ffMult = ffMult;
            return this;
        }

        /**
         * Uses coordinate descent in attention ({@code attn_use_coor_descent}); default false.
         *
         * @param use whether to use it
         * @return this builder
         */
        public Builder optAttnUseCoorDescent(boolean use) {
            this.attnUseCoorDescent = use;
            return this;
        }

        /**
         * Uses the coordinate-descent activation in the feed-forward ({@code ff_use_coor_descent}); default false.
         *
         * @param use whether to use it
         * @return this builder
         */
        public Builder optFfUseCoorDescent(boolean use) {
            this.ffUseCoorDescent = use;
            return this;
        }

        /**
         * Sets the attention sparsity κ ({@code attn_coor_descent_sparsity_k}); default 2.
         *
         * @param k {@code > 0}
         * @return this builder
         */
        public Builder optAttnCoorDescentSparsityK(double k) {
            this.attnCoorDescentSparsityK = k;
            return this;
        }

        /**
         * Sets the feed-forward sparsity ({@code ff_coor_descent_sparsity_k}); default 2.
         *
         * @param k {@code > 0}
         * @return this builder
         */
        public Builder optFfCoorDescentSparsityK(double k) {
            this.ffCoorDescentSparsityK = k;
            return this;
        }

        /**
         * Sets the coordinate-descent iterations ({@code coor_descent_iters}); default 15.
         *
         * @param iters at least 1
         * @return this builder
         */
        public Builder optCoorDescentIters(int iters) {
            this.coorDescentIters = iters;
            return this;
        }

        /**
         * Sets the final ε ({@code coor_descent_eps}); default 0.1.
         *
         * @param eps {@code > 0}
         * @return this builder
         */
        public Builder optCoorDescentEps(double eps) {
            this.coorDescentEps = eps;
            return this;
        }

        /**
         * Sets the null key/values per head ({@code attn_null_kv}); default 0.
         *
         * @param attnNullKv at least 0
         * @return this builder
         */
        public Builder optAttnNullKv(int attnNullKv) {
            this.attnNullKv = attnNullKv;
            return this;
        }

        /**
         * Lets attention learn κ per token and head ({@code learned_sparsity_k}); default false.
         *
         * @param learned whether κ is learned
         * @return this builder
         */
        public Builder optLearnedSparsityK(boolean learned) {
            this.learnedSparsityK = learned;
            return this;
        }

        /**
         * Chooses how coordinate descent runs in every layer; default {@link Backend#AUTO} (see
         * {@link Attention.Builder#optCoorDescentBackend}).
         *
         * @param backend the backend
         * @return this builder
         */
        public Builder optCoorDescentBackend(Backend backend) {
            this.coorDescentBackend = backend;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @return the model
         * @throws IllegalArgumentException if a size is out of range or a layer option is invalid
         */
        public Transformer build() {
            Attention.requireAtLeast("numTokens", numTokens, 1);
            Attention.requireAtLeast("dim", dim, 1);
            Attention.requireAtLeast("seqLen", seqLen, 1);
            Attention.requireAtLeast("depth", depth, 1);
            return new Transformer(this);
        }
    }
}
