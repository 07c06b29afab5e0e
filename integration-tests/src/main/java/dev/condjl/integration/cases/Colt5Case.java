package dev.condjl.integration.cases;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.JsonUtils;

import com.google.gson.JsonObject;
import com.google.gson.reflect.TypeToken;

import dev.condjl.colt5.ReferenceConfigs;
import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.topk.checkpoint.ReadOptions;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A CoLT5 module ({@code CoordinateDescentRouter}, {@code ConditionalRoutedFeedForward},
 * {@code ConditionalRoutedAttention}, {@code ConditionalRoutedTransformerBlock},
 * {@code ConditionalRoutedCrossAttention}, and from issue 8 {@code ConditionalRoutedImageAttention},
 * {@code ConditionalRoutedAutoregressiveAttention}, {@code ConditionalRoutedViT} (input {@code img}) and the
 * {@code coordinate_descent_attention.*} classes) built from the reference's keyword arguments by
 * {@link ReferenceConfigs}, with {@code --weights} (safetensors or {@code torch.save}, after {@code --key} and
 * {@code --strip-prefix}) loaded strictly by {@code state_dict} name, run in inference mode.
 *
 * <p>Inputs: {@code x}, optional boolean {@code mask}; the cross attention also {@code context} and optional
 * {@code context_mask}; the router optionally {@code routing_tokens}. Forward: the reference's non-tensor keyword
 * arguments (e.g. {@code num_tokens} for the router, {@code num_heavy_tokens} for the feed-forward). Output
 * {@code output}; the router's {@code indices} (absent when not routed), {@code scores}, {@code routed_tokens},
 * {@code routed_mask} (absent without a mask). Without {@code --weights} the parameters are freshly initialised.
 */
final class Colt5Case implements ReferenceCase {

    /** {@code CoordinateDescentRouter}. */
    static final Colt5Case ROUTER = new Colt5Case("CoordinateDescentRouter", List.of("x", "mask", "routing_tokens"));
    /** {@code ConditionalRoutedFeedForward}. */
    static final Colt5Case FEED_FORWARD = new Colt5Case("ConditionalRoutedFeedForward", List.of("x", "mask"));
    /** {@code ConditionalRoutedAttention}. */
    static final Colt5Case ATTENTION = new Colt5Case("ConditionalRoutedAttention", List.of("x", "mask"));
    /** {@code ConditionalRoutedTransformerBlock}. */
    static final Colt5Case BLOCK = new Colt5Case("ConditionalRoutedTransformerBlock", List.of("x", "mask"));
    /** {@code ConditionalRoutedCrossAttention}. */
    static final Colt5Case CROSS_ATTENTION =
            new Colt5Case("ConditionalRoutedCrossAttention", List.of("x", "context", "mask", "context_mask"));
    /** {@code ConditionalRoutedImageAttention}: {@code x (b, H, W, d)} or channel-first. */
    static final Colt5Case IMAGE_ATTENTION = new Colt5Case("ConditionalRoutedImageAttention", List.of("x"));
    /** {@code ConditionalRoutedAutoregressiveAttention}. */
    static final Colt5Case AUTOREGRESSIVE_ATTENTION =
            new Colt5Case("ConditionalRoutedAutoregressiveAttention", List.of("x"));
    /** {@code ConditionalRoutedViT}: {@code img (b, c, H, W)}, output the logits. */
    static final Colt5Case VIT = new Colt5Case("ConditionalRoutedViT", List.of("img"));
    /** {@code coordinate_descent_attention.Attention}. */
    static final Colt5Case CD_ATTENTION = new Colt5Case("coordinate_descent_attention.Attention", List.of("x"));
    /** {@code coordinate_descent_attention.FeedForward}. */
    static final Colt5Case CD_FEED_FORWARD = new Colt5Case("coordinate_descent_attention.FeedForward", List.of("x"));
    /** {@code coordinate_descent_attention.Transformer}: {@code x} token ids, output the logits. */
    static final Colt5Case CD_TRANSFORMER = new Colt5Case("coordinate_descent_attention.Transformer", List.of("x"));
    /** {@code coordinate_descent_attention.AutoregressiveWrapper}: {@code x} token ids, output the loss. */
    static final Colt5Case CD_AUTOREGRESSIVE_WRAPPER =
            new Colt5Case("coordinate_descent_attention.AutoregressiveWrapper", List.of("x"));

    private static final Logger LOGGER = LogManager.getLogger(Colt5Case.class);

    private final String name;
    private final List<String> tensorNames;

    private Colt5Case(String name, List<String> tensorNames) {
        this.name = name;
        this.tensorNames = tensorNames;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Map<String, NDArray> run(NDManager manager, JsonObject config, JsonObject forward,
            Map<String, NDArray> inputs, Optional<Path> weights, ReadOptions weightOptions) throws IOException {
        Block block = ReferenceConfigs.build(name, toMap(config));
        var params = ReferenceConfigs.forwardParams(name, toMap(forward));

        CaseInputs tensors = new CaseInputs(inputs);
        NDList list = new NDList();
        for (String tensor : tensorNames) {
            NDArray array = tensor.equals("x") || tensor.equals("context") || tensor.equals("img")
                    ? tensors.require(tensor) : tensors.optional(tensor);
            if (array != null) {
                if (tensor.endsWith("mask") && array.getDataType() != DataType.BOOLEAN) {
                    throw new IllegalArgumentException("input tensor '" + tensor + "' must be BOOL, got "
                            + array.getDataType());
                }
                array.setName(tensor);
                list.add(array);
            }
        }
        tensors.rejectUnknown();

        // the first input's shape: the ViT's patch embedding and the cd Transformer's embeddings need it
        block.initialize(manager, DataType.FLOAT32, list.head().getShape());
        if (weights.isPresent()) {
            Checkpoints.loadInto(block, weights.get(), weightOptions, true);
        } else {
            LOGGER.warn("{}: no --weights given, running with freshly initialised parameters", name);
        }
        NDList out = block.forward(new ParameterStore(manager, false), list, false, params);
        Map<String, NDArray> outputs = new LinkedHashMap<>();
        for (NDArray array : out) {
            outputs.put(out.size() == 1 ? "output" : array.getName(), array);
        }
        return outputs;
    }

    private static Map<String, Object> toMap(JsonObject json) {
        return JsonUtils.GSON.fromJson(json, new TypeToken<Map<String, Object>>() {}.getType());
    }
}
