package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * {@link RoutedBuilder#optZeroInitHeavyBranch}: every routed module starts its heavy branch's query and output
 * projections at zero and nothing else, and the routers then see no gradient until training has grown the output
 * projection.
 */
class ZeroInitHeavyBranchTest {

    private static final int DIM = 16;

    private static final Predicate<String> HEAVY_OUTPUT = name -> name.endsWith("heavy_attn.to_out.weight")
            || name.endsWith("heavy_ff.3.weight") || name.endsWith("heavy_ff.3.bias");
    private static final Predicate<String> ZERO_INIT =
            HEAVY_OUTPUT.or(name -> name.endsWith("heavy_attn.to_q.weight"));

    /** A module and the input shapes it is initialised for. */
    private record Case(Block block, Shape... shapes) {}

    private static List<Case> modules(boolean zero) {
        return List.of(
                new Case(ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(6)
                        .optZeroInitHeavyBranch(zero).build(), new Shape(2, 23, DIM)),
                new Case(ConditionalRoutedAttention.builder().setDim(DIM).setNumHeavyTokensQ(6)
                        .setNumHeavyTokensKv(8).optLightWindowSize(8).optZeroInitHeavyBranch(zero).build(),
                        new Shape(2, 21, DIM)),
                new Case(block(zero), new Shape(2, 22, DIM)),
                new Case(ConditionalRoutedAutoregressiveAttention.builder().setDim(DIM).setNumHeavyTokensQ(2)
                        .setNumHeavyTokensKv(5).optLightWindowSize(4).optZeroInitHeavyBranch(zero).build(),
                        new Shape(1, 16, DIM)),
                new Case(ConditionalRoutedImageAttention.builder().setDim(8).setNumHeavyTokensQ(2)
                        .setNumHeavyTokensKv(2).optLightWindowSize(4).optZeroInitHeavyBranch(zero).build(),
                        new Shape(1, 8, 8, 8)),
                new Case(ConditionalRoutedCrossAttention.builder().setDim(DIM).setNumTokensQ(5).setNumTokensKv(9)
                        .optZeroInitHeavyBranch(zero).build(), new Shape(2, 12, DIM), new Shape(2, 30, DIM)),
                new Case(ConditionalRoutedViTTest.fixtureConfig().optZeroInitHeavyBranch(zero).build(),
                        new Shape(1, 3, 16, 16)));
    }

    private static ConditionalRoutedTransformerBlock block(boolean zero) {
        return ConditionalRoutedTransformerBlock.builder().setDim(DIM).setNumHeavyAttnTokensQ(6)
                .setNumHeavyAttnTokensKv(8).setNumHeavyFfTokens(7).optLightDimHead(8).optLightHeads(2)
                .optLightWindowSize(8).optHeavyDimHead(8).optHeavyHeads(4).optZeroInitHeavyBranch(zero).build();
    }

    @Test
    void onlyTheHeavyQueryAndOutputProjectionsStartAtZero() {
        Engine.getInstance().setRandomSeed(3);
        try (NDManager manager = NDManager.newBaseManager()) {
            for (boolean zero : new boolean[] {true, false}) {
                for (Case c : modules(zero)) {
                    String module = c.block().getClass().getSimpleName() + (zero ? " (zero init)" : " (reference)");
                    c.block().initialize(manager, DataType.FLOAT32, c.shapes());
                    int zeroInit = 0;
                    for (Map.Entry<String, Parameter> e : StateDicts.parameters(c.block()).entrySet()) {
                        NDArray w = e.getValue().getArray();
                        boolean allZero = w.abs().max().getFloat() == 0f;
                        if (ZERO_INIT.test(e.getKey())) {
                            zeroInit++;
                            assertEquals(zero, allZero, module + ": " + e.getKey());
                        } else if (e.getKey().endsWith("weight") && w.getShape().dimension() == 2) {
                            assertFalse(allZero, module + ": " + e.getKey() + " must keep its random draw");
                        }
                    }
                    assertTrue(zeroInit > 1, module + " has no heavy query or output projection");
                }
            }
        }
    }

    /**
     * With the heavy outputs at zero the loss does not depend on which tokens are routed, so the routing tokens'
     * gradient is exactly 0 while the output projections' is not (the uniform attention's output is not 0); one
     * optimizer step later the projections are no longer 0 and the routers learn.
     */
    @Test
    void routersLearnOnlyOnceTheHeavyBranchesHaveGrown() {
        Engine.getInstance().setRandomSeed(5);
        ConditionalRoutedTransformerBlock block = block(true);
        try (Model model = Model.newInstance("zero-init")) {
            model.setBlock(block);
            DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.l2Loss())
                    .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(1e-2f)).build());
            try (Trainer trainer = model.newTrainer(config)) {
                NDManager m = trainer.getManager();
                NDList batch = new NDList(m.randomNormal(new Shape(2, 22, DIM)));
                NDArray target = m.randomNormal(new Shape(2, 22, DIM));
                trainer.initialize(batch.getShapes());
                for (int step = 0; step < 2; step++) {
                    try (GradientCollector gc = trainer.newGradientCollector()) {
                        gc.backward(trainer.forward(batch).head().sub(target).square().mean());
                    }
                    for (Map.Entry<String, Parameter> e : StateDicts.parameters(block).entrySet()) {
                        float g = e.getValue().getArray().getGradient().abs().sum().getFloat();
                        if (e.getKey().endsWith("routing_token")) {
                            assertEquals(step > 0, g > 0, "step " + step + ": gradient of " + e.getKey() + " " + g);
                        } else if (HEAVY_OUTPUT.test(e.getKey()) && e.getKey().endsWith("weight")) {
                            assertTrue(g > 0, "step " + step + ": no gradient for " + e.getKey());
                        }
                    }
                    trainer.step();
                }
            }
        }
    }
}
