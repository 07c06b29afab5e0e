package dev.condjl.colt5;

import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;

/**
 * {@code torch.nn.Sequential}: children run in order and are named by their position {@code "0"}, {@code "1"}, ...
 *
 * <p>DJL's {@link SequentialBlock} names children after their class, so {@code state_dict} keys such as
 * {@code heavy_ff.3.weight} or {@code to_patch_embedding.1.weight} could not be produced. A parameter-free step
 * (GELU, an einops rearrange) is added as a lambda and keeps its index, exactly as in PyTorch.
 *
 * <p>Each child gets the previous child's whole output list. {@link MaskedSequential} is the variant that carries
 * a {@code (b, n)} mask along beside the tokens.
 */
public class Sequential extends SequentialBlock {

    /** {@inheritDoc} */
    @Override
    public SequentialBlock add(Block block) {
        addChildBlock(Integer.toString(children.size()), block);
        return this;
    }
}
