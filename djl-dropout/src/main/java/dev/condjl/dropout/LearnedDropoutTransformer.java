package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;
import dev.condjl.topk.checkpoint.TiedWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * yif-AI's decoder-only {@code LearnedDropoutTransformer} (spec §4.1), and with no LearnedDropout its
 * {@code baseline_transformer} (standard dropout at the embedding, the attention probabilities, the attention output
 * and the FFN output).
 *
 * <p>Forward, tokens {@code (B, T)} int → {@code e = token_embedding[x] + positional_embedding[0..T)}, dropout; per
 * layer {@code x = x + MHA(ln1(x))}, {@code x = x + FFN(ln2(x))} with {@code FFN = residual_proj(gelu(linear(·)))}
 * followed by {@link LearnedDropout} (or dropout); {@code logits = ln(x)·token_embeddingᵀ} (tied output layer).
 * With {@code EMBED} LearnedDropout, {@code dropout_embed_attn} (a causal MHA over e) computes every layer's mask
 * input once per forward.
 *
 * <p>Outputs: {@code [logits (B, T, V)]}, plus, with LearnedDropout, {@code [penalty (), fraction of ones ()]}, each
 * the mean over layers (yif-AI's {@code aggregate_sub_module_stats}); feed them to {@link PenalizedLoss} with
 * penalty index 1.
 *
 * <p>Parameter names follow yif-AI's {@code state_dict}: {@code token_embedding.weight},
 * {@code positional_embedding.weight}, {@code transformer_blocks.{i}.multi_attn_head.batch_attn_weights.weight},
 * {@code ….multi_attn_head.residual_proj.weight}, {@code ….feed_forward.linear.weight},
 * {@code ….feed_forward.residual_proj.weight}, {@code ….feed_forward.dropout.batch_attn_weights.weight},
 * {@code ….feed_forward.dropout.shift}, {@code ….ln1.weight}, {@code ….ln2.weight}, {@code ln.weight},
 * {@code dropout_embed_attn.batch_attn_weights.weight}, {@code dropout_embed_attn.linear.weight} (biases when
 * {@code useBias}). The tied {@code output_layer.weight} is {@code token_embedding.weight} and is not a second
 * parameter; as a {@link TiedWeights} the model accepts yif-AI's second copy on load when it is equal and writes it
 * on export, so {@code Checkpoints.loadInto(model, Path.of("ckpt.pt"))} takes a yif-AI {@code state_dict} strictly.
 * Initialization as nanoGPT: N(0, 0.02), {@code residual_proj} N(0, 0.02/√(2L)), norms 1.
 *
 * <p>One concept in one file: the private {@code Norm}, {@code Attention}, {@code FeedForward} and {@code Layer}
 * blocks exist only to give the parameters yif-AI's names and are used nowhere else (the reusable pieces,
 * {@link LearnedDropout} and {@link CausalAttention}, have their own files), so the model reads top to bottom as the
 * reference's {@code model.py} does.
 */
public final class LearnedDropoutTransformer extends AbstractBlock implements TiedWeights {

    private static final Map<String, String> TIED = Map.of("output_layer.weight", "token_embedding.weight");

    private static final byte VERSION = 1;
    private static final float INIT_STD = 0.02f;

    private final int embedDim;
    private final int contextSize;
    private final float dropoutRate;
    private final Parameter tokenEmbedding;
    private final Parameter positionalEmbedding;
    private final Attention dropoutEmbedAttn;
    private final List<Layer> layers = new ArrayList<>();
    private final Norm ln;
    private final boolean learned;

    private LearnedDropoutTransformer(Builder builder) {
        super(VERSION);
        embedDim = builder.nEmbed;
        contextSize = builder.contextSize;
        dropoutRate = builder.dropoutRate;
        tokenEmbedding = addParameter(embedding("token_embedding.weight", builder.alphabetSize, embedDim));
        positionalEmbedding = addParameter(embedding("positional_embedding.weight", builder.contextSize, embedDim));
        learned = builder.learnedDropout != null;
        boolean embedInput =
                learned && builder.learnedDropout.getDropoutInputType() == LearnedDropout.DropoutInputType.EMBED;
        dropoutEmbedAttn = embedInput
                ? addChildBlock("dropout_embed_attn", new Attention(builder, "linear", INIT_STD))
                : null;
        float residualStd = (float) (INIT_STD / Math.sqrt(2.0 * builder.nLayer));
        for (int i = 0; i < builder.nLayer; i++) {
            LearnedDropout dropout =
                    learned ? builder.learnedDropout.buildFor(embedDim, builder.nHead, builder.useBias) : null;
            layers.add(addChildBlock("transformer_blocks." + i, new Layer(builder, dropout, residualStd)));
        }
        ln = addChildBlock("ln", new Norm(builder.useBias));
    }

    private static Parameter embedding(String name, int rows, int columns) {
        return Parameter.builder()
                .setName(name)
                .setType(Parameter.Type.WEIGHT)
                .optInitializer(new NormalInitializer(INIT_STD))
                .optShape(new Shape(rows, columns))
                .build();
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The number of parameters as yif-AI's {@code get_num_params()} counts them: every parameter once (the tied
     * output layer is the token embedding), without the positional embedding.
     *
     * @return the count; the block must be initialized
     */
    public long numParams() {
        long total = 0;
        for (Parameter p : getParameters().values()) {
            total += p.getArray().size();
        }
        return total - positionalEmbedding.getArray().size();
    }

    /**
     * yif-AI's output layer shares the token embedding.
     *
     * @return {@code output_layer.weight -> token_embedding.weight}
     */
    @Override
    public Map<String, String> tiedKeys() {
        return TIED;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray tokens = inputs.singletonOrThrow();
        NDManager manager = tokens.getManager();
        long t = tokens.getShape().get(1);
        if (tokens.getShape().dimension() != 2 || t > contextSize) {
            throw new IllegalArgumentException(
                    "tokens must be (B, T) with T <= contextSize (" + contextSize + "), got " + tokens.getShape());
        }
        NDArray tokenTable = parameterStore.getValue(tokenEmbedding, tokens.getDevice(), training);
        NDArray positions = manager.arange(0, t, 1, DataType.INT64, tokens.getDevice());
        NDArray embed = Embedding.embedding(tokens, tokenTable, SparseFormat.DENSE).head()
                .add(Embedding.embedding(positions, parameterStore.getValue(
                        positionalEmbedding, tokens.getDevice(), training), SparseFormat.DENSE).head());
        embed = dropout(embed, dropoutRate, training);
        NDArray dropoutEmbed = dropoutEmbedAttn == null
                ? null
                : dropoutEmbedAttn.forward(parameterStore, new NDList(embed), training).head();
        NDArray x = embed;
        NDList penalties = new NDList();
        NDList ones = new NDList();
        for (Layer layer : layers) {
            NDList in = dropoutEmbed == null ? new NDList(x) : new NDList(x, dropoutEmbed);
            NDList out = layer.forward(parameterStore, in, training);
            x = out.get(0);
            if (learned) {
                penalties.add(out.get(1));
                ones.add(out.get(2));
            }
        }
        NDArray hidden = ln.forward(parameterStore, new NDList(x), training).head();
        NDArray logits = Linear.linear(hidden, tokenTable).head();
        if (!learned) {
            return new NDList(logits);
        }
        return new NDList(logits, NDArrays.stack(penalties).mean(), NDArrays.stack(ones).mean());
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape tokens = inputShapes[0];
        Shape hidden = new Shape(tokens.get(0), tokens.get(1), embedDim);
        if (dropoutEmbedAttn != null) {
            dropoutEmbedAttn.initialize(manager, dataType, hidden);
        }
        for (Layer layer : layers) {
            layer.initialize(manager, dataType, dropoutEmbedAttn == null ? new Shape[] {hidden}
                    : new Shape[] {hidden, hidden});
        }
        ln.initialize(manager, dataType, hidden);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape logits = new Shape(inputShapes[0].get(0), inputShapes[0].get(1), tokenEmbedding.getShape().get(0));
        return learned ? new Shape[] {logits, new Shape(), new Shape()} : new Shape[] {logits};
    }

    /** yif-AI's {@code LayerNorm}: {@code weight} (C) and, with bias, {@code bias} (C); eps 1e-5, last axis. */
    private static final class Norm extends AbstractBlock {
        private final Parameter weight;
        private final Parameter bias;

        Norm(boolean useBias) {
            weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.GAMMA).build());
            bias = useBias
                    ? addParameter(Parameter.builder().setName("bias").setType(Parameter.Type.BETA).build())
                    : null;
        }

        @Override
        protected void prepare(Shape[] inputShapes) {
            Shape c = new Shape(inputShapes[0].get(inputShapes[0].dimension() - 1));
            weight.setShape(c);
            if (bias != null) {
                bias.setShape(c);
            }
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray x = inputs.head();
            NDArray gamma = ps.getValue(weight, x.getDevice(), training);
            NDArray beta = bias == null
                    ? x.getManager().zeros(gamma.getShape(), gamma.getDataType(), x.getDevice())
                    : ps.getValue(bias, x.getDevice(), training);
            return LayerNorm.layerNorm(x, gamma.getShape(), gamma, beta, 1e-5f);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {inputShapes[0]};
        }
    }

    /**
     * yif-AI's {@code MultiAttentionHead} ({@code batch_attn_weights}, causal attention, output projection, dropout);
     * its {@code DropoutEmbedAttention} is the same with the projection named {@code linear}.
     */
    private static final class Attention extends AbstractBlock {
        private final int numHeads;
        private final float dropoutRate;
        private final Linear batchAttnWeights;
        private final Linear projection;

        Attention(Builder config, String projectionName, float projectionStd) {
            numHeads = config.nHead;
            dropoutRate = config.dropoutRate;
            batchAttnWeights = addChildBlock("batch_attn_weights", linear(3L * config.nEmbed, config, INIT_STD));
            projection = addChildBlock(projectionName, linear(config.nEmbed, config, projectionStd));
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray qkv = batchAttnWeights.forward(ps, inputs, training).head();
            NDArray values = CausalAttention.attend(qkv, numHeads, dropoutRate, training);
            NDArray out = projection.forward(ps, new NDList(values), training).head();
            return new NDList(dropout(out, dropoutRate, training));
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            batchAttnWeights.initialize(manager, dataType, inputShapes[0]);
            projection.initialize(manager, dataType, inputShapes[0]);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {inputShapes[0]};
        }
    }

    /** yif-AI's {@code FeedForward}: {@code linear} (4C), GELU, {@code residual_proj} (C), then the dropout. */
    private static final class FeedForward extends AbstractBlock {
        private final float dropoutRate;
        private final Linear linear;
        private final Linear residualProj;
        private final LearnedDropout dropout;

        FeedForward(Builder config, LearnedDropout dropout, float residualStd) {
            dropoutRate = config.dropoutRate;
            linear = addChildBlock("linear", linear(4L * config.nEmbed, config, INIT_STD));
            residualProj = addChildBlock("residual_proj", linear(config.nEmbed, config, residualStd));
            this.dropout = dropout == null ? null : addChildBlock("dropout", dropout);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray h = linear.forward(ps, new NDList(inputs.get(0)), training).head();
            h = residualProj.forward(ps, new NDList(Activation.gelu(h)), training).head();
            if (dropout == null) {
                return new NDList(LearnedDropoutTransformer.dropout(h, dropoutRate, training));
            }
            NDList in = inputs.size() > 1 ? new NDList(h, inputs.get(1)) : new NDList(h);
            return dropout.forward(ps, in, training);
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            Shape x = inputShapes[0];
            linear.initialize(manager, dataType, x);
            residualProj.initialize(manager, dataType, new Shape(x.get(0), x.get(1), 4 * x.get(2)));
            if (dropout != null) {
                dropout.initialize(manager, dataType, inputShapes);
            }
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return dropout == null ? new Shape[] {inputShapes[0]} : dropout.getOutputShapes(inputShapes);
        }
    }

    /** yif-AI's {@code TransformerBlock}: pre-norm attention and feed-forward residual branches. */
    private static final class Layer extends AbstractBlock {
        private final Attention multiAttnHead;
        private final FeedForward feedForward;
        private final Norm ln1;
        private final Norm ln2;

        Layer(Builder config, LearnedDropout dropout, float residualStd) {
            multiAttnHead = addChildBlock("multi_attn_head", new Attention(config, "residual_proj", residualStd));
            feedForward = addChildBlock("feed_forward", new FeedForward(config, dropout, residualStd));
            ln1 = addChildBlock("ln1", new Norm(config.useBias));
            ln2 = addChildBlock("ln2", new Norm(config.useBias));
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray x = inputs.get(0);
            NDArray normed = ln1.forward(ps, new NDList(x), training).head();
            x = x.add(multiAttnHead.forward(ps, new NDList(normed), training).head());
            NDList ffIn = new NDList(ln2.forward(ps, new NDList(x), training).head());
            if (inputs.size() > 1) {
                ffIn.add(inputs.get(1));
            }
            NDList ff = feedForward.forward(ps, ffIn, training);
            NDList out = new NDList(x.add(ff.get(0)));
            out.addAll(ff.subNDList(1));
            return out;
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            Shape x = inputShapes[0];
            ln1.initialize(manager, dataType, x);
            multiAttnHead.initialize(manager, dataType, x);
            ln2.initialize(manager, dataType, x);
            feedForward.initialize(manager, dataType, inputShapes);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return feedForward.getOutputShapes(inputShapes);
        }
    }

    private static NDArray dropout(NDArray x, float rate, boolean training) {
        return training && rate > 0f ? Dropout.dropout(x, rate, true).head() : x;
    }

    private static Linear linear(long units, Builder config, float std) {
        Linear linear = Linear.builder().setUnits(units).optBias(config.useBias).build();
        linear.setInitializer(new NormalInitializer(std), Parameter.Type.WEIGHT);
        return linear;
    }

    /** Builder for {@link LearnedDropoutTransformer}; options follow yif-AI's {@code ModelConfig}. */
    public static final class Builder {

        private int alphabetSize;
        private int contextSize;
        private int nEmbed;
        private int nLayer;
        private int nHead;
        private float dropoutRate;
        private boolean useBias;
        private LearnedDropout.Builder learnedDropout;

        private Builder() {}

        /**
         * Sets the vocabulary size V (required).
         *
         * @param alphabetSize V &gt; 0
         * @return this builder
         */
        public Builder setAlphabetSize(int alphabetSize) {
            this.alphabetSize = alphabetSize;
            return this;
        }

        /**
         * Sets the maximum sequence length (required; rows of the positional embedding).
         *
         * @param contextSize &gt; 0
         * @return this builder
         */
        public Builder setContextSize(int contextSize) {
            this.contextSize = contextSize;
            return this;
        }

        /**
         * Sets the width C (required).
         *
         * @param nEmbed C &gt; 0
         * @return this builder
         */
        public Builder setNEmbed(int nEmbed) {
            this.nEmbed = nEmbed;
            return this;
        }

        /**
         * Sets the number of layers L (required).
         *
         * @param nLayer L &gt; 0
         * @return this builder
         */
        public Builder setNLayer(int nLayer) {
            this.nLayer = nLayer;
            return this;
        }

        /**
         * Sets the attention heads H (required).
         *
         * @param nHead H dividing C
         * @return this builder
         */
        public Builder setNHead(int nHead) {
            this.nHead = nHead;
            return this;
        }

        /**
         * Sets the standard dropout rate (default 0): embedding, attention probabilities, attention output and,
         * without LearnedDropout, the FFN output.
         *
         * @param dropoutRate in [0, 1)
         * @return this builder
         */
        public Builder optDropoutRate(float dropoutRate) {
            this.dropoutRate = dropoutRate;
            return this;
        }

        /**
         * Sets whether linear layers and norms have biases (default false).
         *
         * @param useBias yif-AI's {@code use_bias}
         * @return this builder
         */
        public Builder optUseBias(boolean useBias) {
            this.useBias = useBias;
            return this;
        }

        /**
         * Puts a LearnedDropout after every FFN (default none: the baseline transformer). Its embedDim is the
         * model's C; its numHeads and bias default to the model's where the builder leaves them unset.
         *
         * @param learnedDropout a configured LearnedDropout builder, used once per layer
         * @return this builder
         */
        public Builder optLearnedDropout(LearnedDropout.Builder learnedDropout) {
            this.learnedDropout = learnedDropout;
            return this;
        }

        /**
         * Builds the model.
         *
         * @return a new {@link LearnedDropoutTransformer}
         * @throws IllegalArgumentException if a required option is missing or out of range
         */
        public LearnedDropoutTransformer build() {
            if (alphabetSize <= 0 || contextSize <= 0 || nEmbed <= 0 || nLayer <= 0) {
                throw new IllegalArgumentException(String.format(
                        "alphabetSize (%d), contextSize (%d), nEmbed (%d) and nLayer (%d) must be > 0",
                        alphabetSize, contextSize, nEmbed, nLayer));
            }
            if (nHead <= 0 || nEmbed % nHead != 0) {
                throw new IllegalArgumentException(
                        "nHead (" + nHead + ") must be > 0 and divide nEmbed (" + nEmbed + ")");
            }
            if (!(dropoutRate >= 0f && dropoutRate < 1f)) {
                throw new IllegalArgumentException("dropoutRate (" + dropoutRate + ") must be in [0, 1)");
            }
            return new LearnedDropoutTransformer(this);
        }
    }
}
