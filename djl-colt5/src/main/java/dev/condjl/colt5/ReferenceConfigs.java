package dev.condjl.colt5;

import ai.djl.nn.Block;
import ai.djl.util.PairList;
import dev.condjl.colt5.cdattention.CoorDescentBuilder;
import dev.condjl.topk.Backend;
import dev.condjl.topk.TieBreak;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Builds CoLT5 blocks from the reference's class name and keyword arguments (e.g. a training configuration saved as
 * JSON), since hyper-parameters are not part of a checkpoint.
 *
 * <p>Names and keys are the reference's ({@code "ConditionalRoutedAttention"}, {@code num_heavy_tokens_q},
 * {@code router_kwargs: {...}}), with its defaults. Accepted but without effect: {@code use_triton},
 * {@code use_flash_attn}, {@code use_flash}, {@code triton_checkpoint_segments}, {@code num_sets_kv}. The
 * coordinate-descent-attention classes are named {@code coordinate_descent_attention.Attention}, {@code .FeedForward},
 * {@code .Transformer} and {@code .AutoregressiveWrapper} (kwargs {@code net}: the Transformer's); they take the
 * extra key {@code backend}. Extra router keys: {@code tie_break} ({@code "BY_INPUT"}, the router's default, or
 * {@code "REFERENCE"}) and {@code backend} ({@code "AUTO"}, {@code "UNROLLED"}). Unknown keys are an error.
 */
public final class ReferenceConfigs {

    private static final Map<String, Function<Kwargs, Block>> MODULES = new LinkedHashMap<>();
    private static final Map<String, Set<String>> FORWARD_KWARGS = Map.of(
            "CoordinateDescentRouter", Set.of("num_tokens", "random_route", "keep_one_route_dim"),
            "ConditionalRoutedFeedForward", Set.of("num_heavy_tokens", "return_routing"),
            "ConditionalRoutedAttention", Set.of("num_heavy_tokens_q", "num_heavy_tokens_kv", "return_routing"),
            "ConditionalRoutedTransformerBlock", Set.of("num_heavy_attn_tokens_q", "num_heavy_attn_tokens_kv",
                    "num_heavy_ff_tokens", "return_routing"),
            "ConditionalRoutedCrossAttention", Set.of("num_tokens_q", "num_tokens_kv"),
            "ConditionalRoutedImageAttention", Set.of("num_heavy_tokens_q", "num_heavy_tokens_kv"),
            "ConditionalRoutedAutoregressiveAttention",
            Set.of("num_heavy_tokens_q", "num_heavy_tokens_kv", "random_route", "return_routing"));

    static {
        MODULES.put("RMSNorm", k -> new RMSNorm(k.requiredInt("dim")));
        MODULES.put("FeedForward", k -> FeedForward.builder().setDim(k.requiredInt("dim"))
                .optMult(k.getDouble("mult", 4)).build());
        MODULES.put("SelfAttention", ReferenceConfigs::selfAttention);
        MODULES.put("Attention", ReferenceConfigs::attention);
        MODULES.put("LocalMHA", ReferenceConfigs::localMha);
        MODULES.put("CoordinateDescentRouter", k -> router(k).setDim(k.requiredInt("dim")).build());
        MODULES.put("ConditionalRoutedFeedForward", ReferenceConfigs::feedForward);
        MODULES.put("ConditionalRoutedAttention", ReferenceConfigs::routedAttention);
        MODULES.put("ConditionalRoutedTransformerBlock", ReferenceConfigs::transformerBlock);
        MODULES.put("ConditionalRoutedCrossAttention", ReferenceConfigs::crossAttention);
        MODULES.put("ConditionalRoutedImageAttention", ReferenceConfigs::imageAttention);
        MODULES.put("ConditionalRoutedAutoregressiveAttention", ReferenceConfigs::autoregressiveAttention);
        MODULES.put("ConditionalRoutedViT", ReferenceConfigs::vit);
        MODULES.put("coordinate_descent_attention.Attention", ReferenceConfigs::cdAttention);
        MODULES.put("coordinate_descent_attention.FeedForward", ReferenceConfigs::cdFeedForward);
        MODULES.put("coordinate_descent_attention.Transformer", ReferenceConfigs::cdTransformer);
        MODULES.put("coordinate_descent_attention.AutoregressiveWrapper", ReferenceConfigs::cdAutoregressiveWrapper);
    }

    private ReferenceConfigs() {}

    /**
     * The reference class names this factory builds.
     *
     * @return the names, in a stable order
     */
    public static Set<String> modules() {
        return Collections.unmodifiableSet(MODULES.keySet());
    }

    /**
     * Builds a block.
     *
     * @param module the reference's class name, e.g. {@code "ConditionalRoutedFeedForward"}
     * @param config its keyword arguments (numbers, booleans, strings, null, nested maps for {@code router_kwargs})
     * @return the uninitialised block, its parameters named as the reference's {@code state_dict}
     * @throws IllegalArgumentException for an unknown module, an unknown or missing argument, or a bad value
     */
    public static Block build(String module, Map<String, ?> config) {
        Function<Kwargs, Block> factory = MODULES.get(module);
        if (factory == null) {
            throw new IllegalArgumentException("unknown module '" + module + "'; known: " + MODULES.keySet());
        }
        Kwargs kwargs = new Kwargs(module, config);
        Block block = factory.apply(kwargs);
        kwargs.checkAllUsed();
        return block;
    }

    /**
     * The non-tensor forward arguments as the params of {@code Block.forward}: integral numbers become
     * {@link Integer}, other values are kept.
     *
     * @param module the reference's class name
     * @param forward keyword arguments such as {@code {"num_heavy_tokens": 3}}
     * @return the params pair list
     * @throws IllegalArgumentException for an argument the module's forward does not take
     */
    public static PairList<String, Object> forwardParams(String module, Map<String, ?> forward) {
        Set<String> known = FORWARD_KWARGS.getOrDefault(module, Set.of());
        PairList<String, Object> params = new PairList<>();
        if (forward != null) {
            forward.forEach((key, v) -> {
                if (!known.contains(key)) {
                    throw new IllegalArgumentException(module + ".forward: unknown argument '" + key + "' (known: "
                            + new TreeSet<>(known) + ")");
                }
                params.add(key, v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())
                        ? n.intValue() : v);
            });
        }
        return params;
    }

    private static SelfAttention selfAttention(Kwargs k) {
        k.ignore("use_flash");
        return SelfAttention.builder().setDim(k.requiredInt("dim")).optDimHead(k.getInt("dim_head", 64))
                .optHeads(k.getInt("heads", 8)).optPrenorm(k.getBool("prenorm", false)).build();
    }

    private static Attention attention(Kwargs k) {
        k.ignore("use_flash");
        return Attention.builder().setDim(k.requiredInt("dim")).optDimHead(k.getInt("dim_head", 64))
                .optHeads(k.getInt("heads", 8)).optMultiplyKeysByScore(k.getBool("multiply_keys_by_score", false))
                .build();
    }

    private static LocalMHA localMha(Kwargs k) {
        LocalMHA.Builder b = LocalMHA.builder().setDim(k.requiredInt("dim")).setWindowSize(k.requiredInt("window_size"))
                .optDimHead(k.getInt("dim_head", 64)).optHeads(k.getInt("heads", 8))
                .optPrenorm(k.getBool("prenorm", false)).optCausal(k.getBool("causal", false))
                .optLookBackward(k.getInt("look_backward", 1))
                .optExactWindowsize(k.getBool("exact_windowsize", true));
        Integer lookForward = k.getOptInt("look_forward", null);
        if (lookForward != null) {
            b.optLookForward(lookForward);
        }
        if (k.getBool("use_rotary_pos_emb", false)) {
            throw new IllegalArgumentException("LocalMHA: use_rotary_pos_emb is not supported (CoLT5 never uses it)");
        }
        return b.build();
    }

    /** A router builder from router keyword arguments (without {@code dim}). */
    private static CoordinateDescentRouter.Builder router(Kwargs k) {
        k.ignore("use_triton", "triton_checkpoint_segments");
        return CoordinateDescentRouter.builder()
                .optStraightThrough(k.getBool("straight_through", true))
                .optNIters(k.getInt("n_iters", 20))
                .optFetchKRatio(k.getDouble("fetch_k_ratio", 9.0 / 8.0))
                .optEps(k.getDouble("eps", 0.03))
                .optEpsDecay(k.getDouble("eps_decay", 0.7))
                .optEpsInit(k.getOptDouble("eps_init", 4.0))
                .optNumRoutingTokens(k.getInt("num_routing_tokens", 1))
                .optLearnedRoutingTokens(k.getBool("learned_routing_tokens", false))
                .optCosineSimRouting(k.getBool("cosine_sim_routing", false))
                .optCosineSimScale(k.getDouble("cosine_sim_scale", 8))
                .optRouteBlockSize(k.getOptInt("route_block_size", null))
                .optTieBreak(TieBreak.valueOf(k.getString("tie_break", "BY_INPUT").toUpperCase(Locale.ROOT)))
                .optBackend(Backend.valueOf(k.getString("backend", "AUTO").toUpperCase(Locale.ROOT)));
    }

    private static CoordinateDescentRouter.Builder routerKwargs(Kwargs k) {
        k.ignore("use_triton");
        Kwargs inner = new Kwargs("router_kwargs", k.getMap("router_kwargs"));
        CoordinateDescentRouter.Builder b = router(inner);
        inner.checkAllUsed();
        return b;
    }

    private static ConditionalRoutedFeedForward feedForward(Kwargs k) {
        return routed(k, ConditionalRoutedFeedForward.builder())
                .setNumHeavyTokens(k.requiredInt("num_heavy_tokens"))
                .optLightFfMult(k.getDouble("light_ff_mult", 0.5))
                .optHeavyFfMult(k.getDouble("heavy_ff_mult", 4))
                .build();
    }

    /** {@code dim}, {@code router_straight_through} and {@code router_kwargs} of any routed module. */
    private static <T extends RoutedBuilder<T>> T routed(Kwargs k, T builder) {
        k.ignore("use_flash_attn");
        return builder.setDim(k.requiredInt("dim"))
                .optRouterStraightThrough(k.getBool("router_straight_through", true))
                .optRouterKwargs(routerKwargs(k));
    }

    /** The options every routed self-attention shares (see {@link RoutedAttentionBuilder}). */
    private static <T extends RoutedAttentionBuilder<T>> T routedAttentionOptions(Kwargs k, T builder) {
        return routed(k, builder)
                .optNumRoutedKv(k.getInt("num_routed_kv", 1))
                .optLightDimHead(k.getInt("light_dim_head", 64))
                .optLightHeads(k.getInt("light_heads", 8))
                .optLightWindowSize(k.getInt("light_window_size", 128))
                .optHeavyDimHead(k.getInt("heavy_dim_head", 64))
                .optHeavyHeads(k.getInt("heavy_heads", 8))
                .optMultiplyKeysByScore(k.getBool("multiply_keys_by_score", false))
                .optMultiplyQueriesByScore(k.getBool("multiply_queries_by_score", false))
                .optUseNullQTokens(k.getBool("use_null_q_tokens", true));
    }

    /** The shared options plus Kq and Kkv of the routed attention modules (see {@link RoutedTokensBuilder}). */
    private static <T extends RoutedTokensBuilder<T>> T routedTokensOptions(Kwargs k, T builder) {
        return routedAttentionOptions(k, builder)
                .setNumHeavyTokensQ(k.requiredInt("num_heavy_tokens_q"))
                .setNumHeavyTokensKv(k.requiredInt("num_heavy_tokens_kv"));
    }

    private static ConditionalRoutedAttention routedAttention(Kwargs k) {
        return routedTokensOptions(k, ConditionalRoutedAttention.builder())
                .optHasLightAttn(k.getBool("has_light_attn", true))
                .optRotaryEmb(k.getBool("rotary_emb", false))
                .build();
    }

    private static ConditionalRoutedTransformerBlock transformerBlock(Kwargs k) {
        return routedAttentionOptions(k, ConditionalRoutedTransformerBlock.builder())
                .setNumHeavyAttnTokensQ(k.requiredInt("num_heavy_attn_tokens_q"))
                .setNumHeavyAttnTokensKv(k.requiredInt("num_heavy_attn_tokens_kv"))
                .setNumHeavyFfTokens(k.requiredInt("num_heavy_ff_tokens"))
                .optLightFfMult(k.getDouble("light_ff_mult", 0.5))
                .optHeavyFfMult(k.getDouble("heavy_ff_mult", 4))
                .build();
    }

    private static ConditionalRoutedCrossAttention crossAttention(Kwargs k) {
        k.ignore("num_sets_kv");
        return routed(k, ConditionalRoutedCrossAttention.builder())
                .setNumTokensQ(k.requiredInt("num_tokens_q"))
                .setNumTokensKv(k.requiredInt("num_tokens_kv"))
                .optDimHead(k.getInt("dim_head", 64))
                .optHeads(k.getInt("heads", 8))
                .optKvRoutingTokens(k.getInt("kv_routing_tokens", 1))
                .optMultiplyKeysByScore(k.getBool("multiply_keys_by_score", false))
                .optUseNullQTokens(k.getBool("use_null_q_tokens", true))
                .optRouteBlockSize(k.getOptInt("route_block_size", null))
                .build();
    }

    private static ConditionalRoutedImageAttention imageAttention(Kwargs k) {
        return routedTokensOptions(k, ConditionalRoutedImageAttention.builder())
                .optChannelFirst(k.getBool("channel_first", false))
                .build();
    }

    private static ConditionalRoutedAutoregressiveAttention autoregressiveAttention(Kwargs k) {
        return routedTokensOptions(k, ConditionalRoutedAutoregressiveAttention.builder())
                .optHeavyWindowSize(k.getOptInt("heavy_window_size", null))
                .optRotaryEmb(k.getBool("rotary_emb", false))
                .build();
    }

    /** {@code image_size} and {@code patch_size} are square (an int); routers get ε = default_coor_descent_eps. */
    private static ConditionalRoutedViT vit(Kwargs k) {
        k.ignore("router_use_triton", "flash_attn");
        boolean epsGiven = k.getMap("router_kwargs").containsKey("eps");
        CoordinateDescentRouter.Builder router = routerKwargs(k);
        double defaultEps = k.getDouble("default_coor_descent_eps", 1.0);
        if (!epsGiven) {
            router.optEps(defaultEps);
        }
        return ConditionalRoutedViT.builder()
                .setImageSize(k.requiredInt("image_size"))
                .setPatchSize(k.requiredInt("patch_size"))
                .setNumClasses(k.requiredInt("num_classes"))
                .setDim(k.requiredInt("dim"))
                .setDepth(k.requiredInt("depth"))
                .setAttnNumHeavyTokensQ(k.requiredInt("attn_num_heavy_tokens_q"))
                .setAttnNumHeavyTokensKv(k.requiredInt("attn_num_heavy_tokens_kv"))
                .setAttnHeavyDimHead(k.requiredInt("attn_heavy_dim_head"))
                .setAttnHeavyHeads(k.requiredInt("attn_heavy_heads"))
                .setAttnLightDimHead(k.requiredInt("attn_light_dim_head"))
                .setAttnLightHeads(k.requiredInt("attn_light_heads"))
                .setAttnLightWindowSize(k.requiredInt("attn_light_window_size"))
                .setFfNumHeavyTokens(k.requiredInt("ff_num_heavy_tokens"))
                .setFfHeavyMult(requiredDouble(k, "ConditionalRoutedViT", "ff_heavy_mult"))
                .setFfLightMult(requiredDouble(k, "ConditionalRoutedViT", "ff_light_mult"))
                .optChannels(k.getInt("channels", 3))
                .optRouterStraightThrough(k.getBool("router_straight_through", true))
                .optRouterKwargs(router)
                .optAttnNumRoutedKv(k.getInt("attn_num_routed_kv", 1))
                .build();
    }

    /** The options the coordinate-descent attention and feed-forward share (see {@link CoorDescentBuilder}). */
    private static <T extends CoorDescentBuilder<T>> T coorDescentOptions(Kwargs k, T builder) {
        return builder.setDim(k.requiredInt("dim"))
                .optCoorDescentIters(k.getInt("coor_descent_iters", 20))
                .optCoorDescentEps(k.getDouble("coor_descent_eps", 0.1))
                .optCoorDescentEpsInit(k.getOptDouble("coor_descent_eps_init", 4.0))
                .optCoorDescentEpsDecay(k.getDouble("coor_descent_eps_decay", 0.7))
                .optCoorDescentBackend(backend(k));
    }

    private static dev.condjl.colt5.cdattention.Attention cdAttention(Kwargs k) {
        return coorDescentOptions(k, dev.condjl.colt5.cdattention.Attention.builder())
                .optDimHead(k.getInt("dim_head", 64))
                .optHeads(k.getInt("heads", 8))
                .optUseCoorDescent(k.getBool("use_coor_descent", false))
                .optCoorDescentSparsityK(k.getDouble("coor_descent_sparsity_k", 1))
                .optAttnNullKv(k.getInt("attn_null_kv", 0))
                .optLearnedSparsityK(k.getBool("learned_sparsity_k", false))
                .build();
    }

    private static dev.condjl.colt5.cdattention.FeedForward cdFeedForward(Kwargs k) {
        return coorDescentOptions(k, dev.condjl.colt5.cdattention.FeedForward.builder())
                .optMult(k.getDouble("mult", 4))
                .optUseCoorDescent(k.getBool("use_coor_descent", false))
                .optCoorDescentSparsityK(k.getOptDouble("coor_descent_sparsity_k", null))
                .build();
    }

    private static dev.condjl.colt5.cdattention.Transformer cdTransformer(Kwargs k) {
        return dev.condjl.colt5.cdattention.Transformer.builder()
                .setNumTokens(k.requiredInt("num_tokens"))
                .setDim(k.requiredInt("dim"))
                .setSeqLen(k.requiredInt("seq_len"))
                .setDepth(k.requiredInt("depth"))
                .optDimHead(k.getInt("dim_head", 64))
                .optHeads(k.getInt("heads", 8))
                .optFfMult(k.getDouble("ff_mult", 4))
                .optAttnUseCoorDescent(k.getBool("attn_use_coor_descent", false))
                .optFfUseCoorDescent(k.getBool("ff_use_coor_descent", false))
                .optAttnCoorDescentSparsityK(k.getDouble("attn_coor_descent_sparsity_k", 2))
                .optFfCoorDescentSparsityK(k.getDouble("ff_coor_descent_sparsity_k", 2))
                .optCoorDescentIters(k.getInt("coor_descent_iters", 15))
                .optCoorDescentEps(k.getDouble("coor_descent_eps", 0.1))
                .optAttnNullKv(k.getInt("attn_null_kv", 0))
                .optLearnedSparsityK(k.getBool("learned_sparsity_k", false))
                .optCoorDescentBackend(backend(k))
                .build();
    }

    private static double requiredDouble(Kwargs k, String owner, String key) {
        Double value = k.getOptDouble(key, null);
        if (value == null) {
            throw new IllegalArgumentException(owner + ": missing required argument '" + key + "'");
        }
        return value;
    }

    /** {@code AutoregressiveWrapper(net, pad_value)}: {@code net} holds the Transformer's kwargs. */
    private static dev.condjl.colt5.cdattention.AutoregressiveWrapper cdAutoregressiveWrapper(Kwargs k) {
        k.ignore("pad_value");
        Kwargs net = new Kwargs("net", k.getMap("net"));
        dev.condjl.colt5.cdattention.Transformer transformer = cdTransformer(net);
        net.checkAllUsed();
        return new dev.condjl.colt5.cdattention.AutoregressiveWrapper(transformer);
    }

    /** Extra key of the coordinate-descent-attention modules: {@code backend} ("AUTO", "UNROLLED", "FUSED"). */
    private static Backend backend(Kwargs k) {
        return Backend.valueOf(k.getString("backend", "AUTO").toUpperCase(Locale.ROOT));
    }
}
