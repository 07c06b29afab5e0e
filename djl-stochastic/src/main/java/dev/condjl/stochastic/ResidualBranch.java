package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.Set;

/**
 * The residual function {@code f(x) = block(x) - x} of a block that adds its own residual, so that a {@link
 * StochasticResidual} can drop the whole block per sample.
 *
 * <p>Blocks such as CoLT5's {@code ConditionalRoutedTransformerBlock} ({@code h = x + attn(x); h + ff(h)}) or DJL's
 * {@link TransformerEncoderBlock} already return {@code x + g(x)}. Used directly as a {@link StochasticResidual}
 * branch they would give {@code x + block(x) = 2x + g(x)}. With this adapter,
 *
 * <pre>
 *   eval:           x + f(x)                = block(x)                          the block itself
 *   batch subset:   x_i + (b/k) f(x)_i      = x_i + (b/k) (block(x)_i - x_i)    rows i of the subset
 *                   x_i                                                          the other rows
 * </pre>
 *
 * so the subset's scale {@code b/k} multiplies only the block's residual {@code g}, never the identity path, as in
 * DINOv2's {@code drop_add_residual_stochastic_depth}. {@link StochasticResidual.Builder#setResidualBlock} builds
 * exactly this.
 *
 * <p>Inputs: {@code x (b, ...)} first, then any further inputs of the block (e.g. a {@code (b, n)} mask): the block
 * gets the whole list. Output: {@code [f(x)]}, the shape of {@code x}; further outputs of the block are dropped.
 * Child: {@code block} (so a {@code StochasticResidual} built this way names the block's parameters
 * {@code branch.block.*}).
 */
public final class ResidualBranch extends AbstractBlock {

    private static final byte VERSION = 1;

    /** Blocks of other modules known to return {@code x + g(x)} (named, so this module needs no dependency). */
    private static final Set<String> RESIDUAL_BLOCKS = Set.of(
            TransformerEncoderBlock.class.getName(), "dev.condjl.colt5.ConditionalRoutedTransformerBlock");

    private final Block block;

    /**
     * Wraps a block.
     *
     * @param block maps {@code [x (b, ...), ...]} to {@code x + g(x)} of the shape of {@code x} first
     * @throws IllegalArgumentException if {@code block} is null
     */
    public ResidualBranch(Block block) {
        super(VERSION);
        if (block == null) {
            throw new IllegalArgumentException("block must not be null");
        }
        this.block = addChildBlock("block", block);
    }

    /**
     * Whether a block is one of those known to add its own residual ({@code ConditionalRoutedTransformerBlock},
     * DJL's {@code TransformerEncoderBlock}); such a block must be wrapped in a {@code ResidualBranch} before it
     * is a {@link StochasticResidual}'s branch.
     *
     * @param block a block
     * @return true if {@code block} returns {@code x + g(x)}
     */
    public static boolean addsOwnResidual(Block block) {
        return block != null && RESIDUAL_BLOCKS.contains(block.getClass().getName());
    }

    /**
     * The wrapped block.
     *
     * @return the block whose residual this is
     */
    public Block getBlock() {
        return block;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        NDArray y = block.forward(ps, inputs, training, params).head();
        if (!y.getShape().equals(x.getShape())) {
            throw new IllegalArgumentException("the block's output shape " + y.getShape()
                    + " must equal its input shape " + x.getShape() + " to be a residual block");
        }
        return new NDList(y.sub(x));
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
