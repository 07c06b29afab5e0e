package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The residual function {@code f(x) = block(x) - x} of a block that adds its own residual, such as
 * {@code ConditionalRoutedTransformerBlock} ({@code x + attn(x) + ff(x + attn(x))}), so that a
 * {@link dev.condjl.stochastic.StochasticResidual} can drop the whole block per sample: {@code x + f(x)} in eval is
 * the block itself. Child: {@code block}. Input and output {@code (b, n, d)}.
 */
public final class ResidualBranch extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Block block;

    /**
     * Wraps a block.
     *
     * @param block a block mapping {@code (b, n, d)} to {@code (b, n, d)} that includes its input in its output
     */
    public ResidualBranch(Block block) {
        super(VERSION);
        this.block = addChildBlock("block", block);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        return new NDList(block.forward(ps, new NDList(x), training, params).head().sub(x));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        block.initialize(manager, dataType, inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
