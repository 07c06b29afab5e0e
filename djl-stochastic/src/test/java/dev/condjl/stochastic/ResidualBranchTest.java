package dev.condjl.stochastic;

import static dev.condjl.stochastic.TestArrays.assertClose;
import static dev.condjl.stochastic.TestArrays.rowBitsEqual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.Blocks;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.ParallelBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.transformer.TransformerEncoderBlock;
import ai.djl.training.ParameterStore;

import java.util.List;

import org.junit.jupiter.api.Test;

/** Stochastic depth around a block that adds its own residual: {@link ResidualBranch}, {@code setResidualBlock}. */
class ResidualBranchTest extends ManagedTest {

    private static final int D = 4;

    /** {@code x + linear(x)}: a block with its own residual, as a whole transformer layer. */
    private static Block plusLinear() {
        return new ParallelBlock(
                outs -> new NDList(outs.get(0).head().add(outs.get(1).head())),
                List.of(Blocks.identityBlock(), Linear.builder().setUnits(D).build()));
    }

    private static StochasticResidual aroundResidualBlock(Block block, StochasticDepthMode mode, double p) {
        StochasticResidual layer =
                StochasticResidual.builder().setResidualBlock(block).optMode(mode).optDropProb(p).build();
        layer.initialize(manager, DataType.FLOAT32, new Shape(8, 3, D));
        return layer;
    }

    @Test
    void evalIsTheBlockItselfNotTwiceTheInput() {
        Block block = plusLinear();
        StochasticResidual layer = aroundResidualBlock(block, StochasticDepthMode.BATCH_SUBSET, 0.5);
        ParameterStore ps = new ParameterStore(manager, false);
        NDArray x = manager.randomNormal(new Shape(8, 3, D));
        NDArray expected = block.forward(ps, new NDList(x), false).head();
        NDArray out = layer.forward(ps, new NDList(x), false).head();
        assertClose(expected, out, 1e-6);
        // the wrong way, x + block(x), differs by x
        assertFalse(x.add(expected).allClose(out, 1e-3, 1e-3, false));
    }

    @Test
    void batchSubsetScalesTheBlocksResidualOnly() {
        Engine.getInstance().setRandomSeed(3);
        Block block = plusLinear();
        StochasticResidual layer = aroundResidualBlock(block, StochasticDepthMode.BATCH_SUBSET, 0.5);
        ParameterStore ps = new ParameterStore(manager, false);
        NDArray x = manager.randomNormal(new Shape(8, 3, D));
        NDArray g = block.forward(ps, new NDList(x), false).head().sub(x);
        NDArray out = layer.forward(ps, new NDList(x), true).head();
        int kept = 0;
        for (long i = 0; i < 8; i++) {
            if (rowBitsEqual(x, out, i)) {
                continue;
            }
            kept++;
            // b/k = 8/4 = 2 multiplies g(x) = block(x) - x, never the identity path
            assertClose(x.get(i).add(g.get(i).mul(2)), out.get(i), 1e-5);
        }
        assertEquals(4, kept);
    }

    @Test
    void furtherInputsReachTheBlockAndPassOn() {
        // block(x, mask) = x + mask: its residual is the mask itself
        Block block = new LambdaBlock(in -> new NDList(
                in.get(0).add(in.get(1).toType(DataType.FLOAT32, false).expandDims(-1))));
        StochasticResidual layer = aroundResidualBlock(block, StochasticDepthMode.BATCH_SUBSET, 0.5);
        ParameterStore ps = new ParameterStore(manager, false);
        NDArray x = manager.randomNormal(new Shape(8, 3, D));
        NDArray mask = manager.randomUniform(0f, 1f, new Shape(8, 3)).gt(0.5f);
        NDList out = layer.forward(ps, new NDList(x, mask), false);
        assertClose(x.add(mask.toType(DataType.FLOAT32, false).expandDims(-1)), out.get(0), 1e-6);
        assertSame(mask, out.get(1));
    }

    @Test
    void knownResidualBlocksAreRefusedAsBranch() {
        Block encoder = new TransformerEncoderBlock(D, 2, 2 * D, 0f, Activation::relu);
        assertTrue(ResidualBranch.addsOwnResidual(encoder));
        assertFalse(ResidualBranch.addsOwnResidual(new ResidualBranch(encoder)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StochasticResidual.builder().setBranch(encoder).build());
        assertTrue(e.getMessage().contains("TransformerEncoderBlock adds its own residual"), e.getMessage());
        assertTrue(e.getMessage().contains("setResidualBlock"), e.getMessage());
        StochasticResidual ok = StochasticResidual.builder().setResidualBlock(encoder).build();
        assertSame(encoder, ((ResidualBranch) ok.getChildren().get(0).getValue()).getBlock());
    }

    @Test
    void aBranchErrorInASubsetReportsTheCallersBatchSize() {
        Block picky = new LambdaBlock(in -> {
            long n = in.get(0).getShape().get(1);
            Shape mask = in.get(1).getShape();
            if (mask.get(1) != n) {
                throw new IllegalArgumentException("mask must have shape (" + mask.get(0) + ", " + n + "), got " + mask);
            }
            return new NDList(in.get(0));
        });
        StochasticResidual layer = aroundResidualBlock(picky, StochasticDepthMode.BATCH_SUBSET, 0.5);
        ParameterStore ps = new ParameterStore(manager, false);
        NDList inputs = new NDList(manager.randomNormal(new Shape(8, 3, D)), manager.ones(new Shape(8, 2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> layer.forward(ps, inputs, true));
        assertTrue(e.getMessage().contains("(batch size 8)"), e.getMessage());
        assertTrue(e.getMessage().contains("[(8, 3, 4), (8, 2)]"), e.getMessage());
        assertTrue(e.getMessage().contains("the 4 rows"), e.getMessage());
    }

    @Test
    void nullBlockIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new ResidualBranch(null));
    }
}
