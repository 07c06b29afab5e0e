package dev.condjl.integration.stochastic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;

import dev.condjl.colt5.ConditionalRoutedAttention;
import dev.condjl.colt5.ConditionalRoutedFeedForward;
import dev.condjl.colt5.ConditionalRoutedTransformerBlock;
import dev.condjl.stochastic.StochasticDepthMode;
import dev.condjl.stochastic.StochasticResidual;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.function.Supplier;

/** djl-stochastic's wrapper around CoLT5's routed blocks, which take named inputs (x, mask). */
class StochasticDepthAroundColt5Test {

    private static final int DIM = 16;

    private static NDManager manager;
    private static ParameterStore ps;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
        ps = new ParameterStore(manager, false);
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    private static Block feedForward() {
        return ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(3).build();
    }

    private static Block attention() {
        return ConditionalRoutedAttention.builder()
                .setDim(DIM)
                .setNumHeavyTokensQ(3)
                .setNumHeavyTokensKv(3)
                .optLightWindowSize(4)
                .build();
    }

    /** Named x (b, 8, DIM) and a per-sample token mask (b, 8). */
    private static NDList inputs(long b) {
        NDArray x = manager.randomNormal(new Shape(b, 8, DIM));
        x.setName("x");
        NDArray mask = manager.randomUniform(0f, 1f, new Shape(b, 8)).gt(0.25f);
        mask.setName("mask");
        return new NDList(x, mask);
    }

    private static StochasticResidual wrap(
            Block branch, StochasticDepthMode mode, double p, NDList in) {
        StochasticResidual block =
                StochasticResidual.builder().setBranch(branch).optMode(mode).optDropProb(p).build();
        block.initialize(manager, DataType.FLOAT32, in.getShapes());
        return block;
    }

    @Test
    void batchSubsetRunsTheRoutedBlockOnTheSelectedSamplesWithTheirMasks() {
        NDList in = inputs(6);
        StochasticResidual block = wrap(feedForward(), StochasticDepthMode.BATCH_SUBSET, 0.5, in);
        // CoLT5 routes within each sample, so the subset rows equal the full-batch rows
        NDArray full = block.getChildren().get(0).getValue().forward(ps, in, false).head();
        NDArray x = in.head();
        NDArray out = block.forward(ps, in, true).head();
        int changed = 0;
        for (long i = 0; i < 6; i++) {
            if (!Arrays.equals(x.get(i).toByteArray(), out.get(i).toByteArray())) {
                changed++;
                NDArray expected = x.get(i).add(full.get(i).mul(2f)); // b/k = 6/3
                float diff = expected.sub(out.get(i)).abs().max().getFloat();
                assertTrue(diff < 1e-4, "row " + i + ": max |difference| " + diff);
            }
        }
        assertEquals(3, changed);
    }

    @Test
    void everyParameterOfTheRoutedBlocksGetsAGradientInEveryMode() {
        for (Supplier<Block> branch :
                Arrays.<Supplier<Block>>asList(
                        StochasticDepthAroundColt5Test::feedForward,
                        StochasticDepthAroundColt5Test::attention)) {
            for (StochasticDepthMode mode : StochasticDepthMode.values()) {
                Engine.getInstance().setRandomSeed(3);
                NDList in = inputs(6);
                in.head().setRequiresGradient(true);
                StochasticResidual block = wrap(branch.get(), mode, 0.99, in);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(block.forward(ps, in, true).head().sum());
                }
                for (Pair<String, Parameter> p : block.getParameters()) {
                    if (p.getValue().requiresGradient()) {
                        assertNotNull(
                                JniUtils.getGradient((PtNDArray) p.getValue().getArray()),
                                mode + ": no gradient for " + p.getKey());
                    }
                }
            }
        }
    }

    private static ConditionalRoutedTransformerBlock transformerBlock() {
        return ConditionalRoutedTransformerBlock.builder()
                .setDim(DIM)
                .setNumHeavyAttnTokensQ(3)
                .setNumHeavyAttnTokensKv(3)
                .setNumHeavyFfTokens(3)
                .optLightWindowSize(4)
                .build();
    }

    @Test
    void aTransformerBlockWithItsOwnResidualIsRefusedAsBranch() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StochasticResidual.builder().setBranch(transformerBlock()).build());
        assertTrue(e.getMessage().startsWith("ConditionalRoutedTransformerBlock adds its own residual"),
                e.getMessage());
    }

    @Test
    void aroundATransformerBlockEvalIsTheBlockWithItsMask() {
        NDList in = inputs(4);
        ConditionalRoutedTransformerBlock core = transformerBlock();
        StochasticResidual layer = StochasticResidual.builder()
                .setResidualBlock(core).optMode(StochasticDepthMode.BATCH_SUBSET).optDropProb(0.5).build();
        layer.initialize(manager, DataType.FLOAT32, in.getShapes());
        NDArray expected = core.forward(ps, in, false).head();
        NDList out = layer.forward(ps, in, false);
        assertTrue(expected.allClose(out.head(), 1e-5, 1e-5, false), "eval must equal block(x, mask), not x + block");
        assertEquals("mask", out.get(1).getName());
        // the mask reached the block: without it the block gives another output
        NDArray unmasked = core.forward(ps, new NDList(in.head()), false).head();
        assertTrue(!unmasked.allClose(out.head(), 1e-4, 1e-4, false));
    }
}
