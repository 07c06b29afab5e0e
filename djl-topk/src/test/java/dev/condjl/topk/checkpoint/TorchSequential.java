package dev.condjl.topk.checkpoint;

import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;

/**
 * A test stand-in for {@code torch.nn.Sequential}: children named by position, so the exported keys are {@code 0.weight},
 * {@code 1.weight}, ... (the library's version is {@code dev.condjl.colt5.Sequential}, which this module cannot see).
 */
final class TorchSequential extends SequentialBlock {

    @Override
    public SequentialBlock add(Block block) {
        addChildBlock(Integer.toString(children.size()), block);
        return this;
    }
}
