package dev.condjl.topk.checkpoint;

import java.util.Map;

/**
 * A block whose PyTorch {@code state_dict} holds one of its parameters under a second key: a tied weight, such as a
 * language model's {@code output_layer.weight} that is the {@code token_embedding.weight} tensor itself.
 *
 * <p>The block has one DJL parameter; {@link StateDicts#load} accepts the second key when its values equal the
 * parameter's (and refuses it, explaining the tie, when they differ), and {@link Checkpoints#exportBlock} writes
 * the parameter under both keys, so that PyTorch's {@code load_state_dict(strict=True)} takes the file.
 */
public interface TiedWeights {

    /**
     * The second keys of tied parameters.
     *
     * @return tied key to the state-dict name of the parameter it shares, both relative to this block, e.g.
     *     {@code output_layer.weight -> token_embedding.weight}
     */
    Map<String, String> tiedKeys();
}
