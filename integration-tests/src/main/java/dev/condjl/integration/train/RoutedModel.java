package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.Pair;
import ai.djl.util.PairList;
import dev.condjl.colt5.ConditionalRoutedAutoregressiveAttention;
import dev.condjl.colt5.ConditionalRoutedTransformerBlock;
import dev.condjl.colt5.CoordinateDescentRouter;
import dev.condjl.colt5.RMSNorm;
import dev.condjl.colt5.RoutedAttentionBuilder;
import dev.condjl.colt5.RoutedOutput;
import dev.condjl.topk.checkpoint.StateDicts;
import dev.condjl.colt5.cdattention.Embedding;
import dev.condjl.dropout.LearnedDropout;
import dev.condjl.dropout.GradientClipping;
import dev.condjl.dropout.Parametrization;
import dev.condjl.dropout.Parametrized;
import dev.condjl.dropout.VariationalNoise;
import dev.condjl.dropout.WeightDropout;
import dev.condjl.stochastic.DepthSchedule;
import dev.condjl.stochastic.StochasticDepthMode;
import dev.condjl.stochastic.StochasticResidual;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The model of {@code condjl train}: token and learned position embeddings, {@code depth} routed layers, an RMSNorm
 * and a linear head.
 *
 * <pre>
 *   x = token_emb(t) + pos_emb(0..n-1)                      (b, n, dim)
 *   x = emb_dropout(x)                                      LearnedDropout, with --dropout learned
 *   x = layers.i(x)   for i in 0..depth-1                   x + f_i(x) under stochastic depth
 *   logits = to_logits(norm(x[:, -1]))  (b, classes)        retrieval: the last position answers
 *   logits = to_logits(norm(x))         (b, n, classes)     text: every position predicts the next token
 * </pre>
 *
 * <p>Layer i is a {@link StochasticResidual} (rate {@code i·p/(depth-1)}, DINOv2's linear schedule; mode from the
 * configuration, batch subset by default) set with {@code setResidualBlock}, so it drops the residual
 * {@code f(x) = block(x) - x} ({@link dev.condjl.stochastic.ResidualBranch}) of a
 * {@link ConditionalRoutedTransformerBlock} (retrieval) or a {@link CausalRoutedLayer} (text); with
 * {@code --dropout weight|noise} the block's linear weights are parametrized by {@link WeightDropout} or
 * {@link VariationalNoise}. The forward output is {@code [logits]}, or
 * {@code [logits, penalty]} with learned dropout (for {@link dev.condjl.dropout.PenalizedLoss}).
 */
public final class RoutedModel extends AbstractBlock {

    private static final byte VERSION = 1;

    private final ModelConfig config;
    private final Embedding tokenEmb;
    private final Embedding posEmb;
    private final LearnedDropout embDropout;
    private final List<StochasticResidual> layers = new ArrayList<>();
    private final List<Block> cores = new ArrayList<>();
    private final RMSNorm norm;
    private final Linear toLogits;
    private volatile ParameterStore lastStore;

    /**
     * Builds the model (uninitialized; {@code Trainer.initialize} or {@link #initialize} gives it weights).
     *
     * @param config the configuration
     * @throws IllegalArgumentException if an option is out of range (the blocks' own messages)
     */
    public RoutedModel(ModelConfig config) {
        super(VERSION);
        this.config = config;
        tokenEmb = addChildBlock("token_emb", new Embedding(config.vocabSize(), config.dim()));
        posEmb = addChildBlock("pos_emb", new Embedding(config.seqLen(), config.dim()));
        // small positions at first, so that routing starts from the tokens' content (GPT-2's 0.02)
        posEmb.setInitializer(new NormalInitializer(0.02f), Parameter.Type.WEIGHT);
        embDropout = "learned".equals(config.dropout())
                ? addChildBlock("emb_dropout", LearnedDropout.builder()
                        .setEmbedDim(config.dim()).setNumHeads(config.heads()).build())
                : null;
        double[] rates = DepthSchedule.linear(config.dropPathRate(), config.depth());
        StochasticDepthMode mode = StochasticDepthMode.valueOf(config.dropPathMode());
        for (int i = 0; i < config.depth(); i++) {
            Block block = config.causal() ? causalLayer(config) : routedBlock(config);
            cores.add(block);
            layers.add(addChildBlock("layers." + i, StochasticResidual.builder()
                    .setResidualBlock(regularized(block, config))
                    .optDropProb(rates[i])
                    .optMode(mode)
                    .build()));
        }
        norm = addChildBlock("norm", new RMSNorm(config.dim()));
        toLogits = addChildBlock("to_logits", Linear.builder().setUnits(config.numClasses()).build());
    }

    /**
     * The {@link ConditionalRoutedTransformerBlock} of the retrieval model. Also used by tests to build the
     * reference-named block a checkpoint slice must load into.
     *
     * @param c the configuration
     * @return an uninitialized block
     */
    static ConditionalRoutedTransformerBlock routedBlock(ModelConfig c) {
        return attention(ConditionalRoutedTransformerBlock.builder(), c)
                .setNumHeavyAttnTokensQ(c.heavyTokensQ())
                .setNumHeavyAttnTokensKv(c.heavyTokensKv())
                .optNumRoutedKv(c.numRoutedKv())
                .setNumHeavyFfTokens(c.heavyTokensFf())
                .build();
    }

    private static CausalRoutedLayer causalLayer(ModelConfig c) {
        return new CausalRoutedLayer(attention(ConditionalRoutedAutoregressiveAttention.builder(), c)
                .setNumHeavyTokensQ(c.heavyTokensQ())
                .setNumHeavyTokensKv(c.heavyTokensKv())
                .build(), c.dim());
    }

    /** The options both routed attentions share: width, heads, light window and {@code router_kwargs}. */
    private static <B extends RoutedAttentionBuilder<B>> B attention(B builder, ModelConfig c) {
        return builder.setDim(c.dim())
                .optLightWindowSize(c.lightWindow())
                .optLightHeads(c.heads())
                .optLightDimHead(c.dimHead())
                .optHeavyHeads(c.heads())
                .optHeavyDimHead(c.dimHead())
                .optZeroInitHeavyBranch(c.zeroInitHeavyBranch())
                .optRouterKwargs(CoordinateDescentRouter.builder()
                        .optEps(c.routerEps())
                        .optCosineSimRouting(c.cosineRouting())
                        .optTrainingNoise(c.routerNoise()));
    }

    /** The block itself, or the block with its linear weights parametrized for {@code --dropout weight|noise}. */
    private static Block regularized(Block block, ModelConfig c) {
        Parametrization p = switch (c.dropout()) {
            case "weight" -> new WeightDropout((float) c.dropoutRate(), 2);
            case "noise" -> new VariationalNoise((float) c.dropoutRate(), 2);
            default -> null;
        };
        if (p == null) {
            return block;
        }
        Parametrized wrapped = Parametrized.wrap(block);
        for (Pair<String, Parameter> entry : block.getParameters()) {
            if ("weight".equals(entry.getValue().getName())) {
                wrapped.register(entry.getKey(), p);
            }
        }
        return wrapped;
    }

    /**
     * The configuration the model was built from.
     *
     * @return the configuration
     */
    public ModelConfig getConfig() {
        return config;
    }

    /**
     * The parameter store of the latest forward pass: under a {@code Trainer}, the trainer's store, which holds the
     * per-device copies whose gradients {@link GradientClipping} scales.
     *
     * @return the store, or null before the first forward pass
     */
    public ParameterStore getLastParameterStore() {
        return lastStore;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        lastStore = ps;
        NDList embedded = embed(ps, inputs.head(), training);
        NDArray x = embedded.head();
        for (StochasticResidual layer : layers) {
            x = layer.forward(ps, new NDList(x), training, params).head();
        }
        NDList out = new NDList(head(ps, x, training));
        if (embedded.size() > 1) {
            out.add(embedded.get(1));
        }
        return out;
    }

    /** Embeddings of (b, n) tokens; with learned dropout also its () penalty. */
    private NDList embed(ParameterStore ps, NDArray tokens, boolean training) {
        long n = tokens.getShape().get(1);
        NDArray x = tokenEmb.forward(ps, new NDList(tokens), training).head()
                .add(posEmb.firstRows(ps, n, tokens.getDevice(), training));
        if (embDropout == null) {
            return new NDList(x);
        }
        NDList dropped = embDropout.forward(ps, new NDList(x), training);
        return new NDList(dropped.get(0), dropped.get(1));
    }

    private NDArray head(ParameterStore ps, NDArray x, boolean training) {
        NDArray last = config.causal() ? x : x.get(":, -1, :");
        NDArray h = norm.apply(ps, last, training);
        return toLogits.forward(ps, new NDList(h), training).head();
    }

    /**
     * An evaluation forward pass that also returns where every layer's routers sent the tokens (for the retrieval
     * model; the causal attention does not report its routing yet, so a text model's trace has no layers).
     *
     * @param ps the parameter store
     * @param tokens (b, n) int64 tokens
     * @return the logits and, per layer, the routed positions
     */
    public RoutingTrace trace(ParameterStore ps, NDArray tokens) {
        NDArray x = embed(ps, tokens, false).head();
        List<RoutingTrace.Layer> trace = new ArrayList<>();
        for (Block core : cores) {
            // stochastic depth and weight regularizers are the identity in evaluation
            if (!(core instanceof ConditionalRoutedTransformerBlock block)) {
                x = core.forward(ps, new NDList(x), false).head();
                continue;
            }
            RoutedOutput out = block.applyWithRouting(ps, x, null, null, null, null, false);
            trace.add(new RoutingTrace.Layer(
                    RoutingTrace.rows(out.qIndices()), RoutingTrace.rows(out.kvIndices()),
                    RoutingTrace.rows(out.ffIndices())));
            x = out.output();
        }
        return new RoutingTrace(head(ps, x, false), trace);
    }

    /**
     * The weights under PyTorch-style names: {@code token_emb.weight}, {@code pos_emb.weight}, {@code norm.gamma},
     * {@code to_logits.weight}/{@code bias}, {@code emb_dropout.*}, and for layer i
     * {@code layers.i.<ConditionalRoutedTransformerBlock or CausalRoutedLayer state_dict key>}, e.g.
     * {@code layers.0.conditional_attn.q_router.routing_token}: a PyTorch {@code nn.ModuleList} of the reference's
     * blocks loads its slice unchanged.
     *
     * @return name to parameter array, in model order
     */
    public Map<String, NDArray> stateDict() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        putAll(out, "token_emb.", tokenEmb);
        putAll(out, "pos_emb.", posEmb);
        if (embDropout != null) {
            putAll(out, "emb_dropout.", embDropout);
        }
        for (int i = 0; i < cores.size(); i++) {
            putAll(out, "layers." + i + ".", cores.get(i));
        }
        putAll(out, "norm.", norm);
        putAll(out, "to_logits.", toLogits);
        return out;
    }

    private static void putAll(Map<String, NDArray> out, String prefix, Block block) {
        StateDicts.parameters(block).forEach((name, p) -> out.put(prefix + name, p.getArray()));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape tokens = inputShapes[0];
        Shape hidden = tokens.add(config.dim());
        tokenEmb.initialize(manager, dataType, tokens);
        posEmb.initialize(manager, dataType, new Shape(tokens.get(1)));
        if (embDropout != null) {
            embDropout.initialize(manager, dataType, hidden);
        }
        for (StochasticResidual layer : layers) {
            layer.initialize(manager, dataType, hidden);
        }
        Shape last = config.causal() ? hidden : new Shape(tokens.get(0), config.dim());
        norm.initialize(manager, dataType, last);
        toLogits.initialize(manager, dataType, last);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape tokens = inputShapes[0];
        Shape logits = config.causal()
                ? tokens.add(config.numClasses())
                : new Shape(tokens.get(0), config.numClasses());
        return embDropout == null ? new Shape[] {logits} : new Shape[] {logits, new Shape()};
    }
}
