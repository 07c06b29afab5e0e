package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.PairList;
import dev.condjl.topk.checkpoint.StateDicts;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Every block trains with DJL's Trainer: the loss decreases over a few Adam steps on a fixed batch, and every
 * trainable parameter receives a non-zero gradient, the routing tokens included (through the straight-through
 * scores).
 */
class TrainingTest {

    private static final int DIM = 16;
    private static final int STEPS = 6;

    private static ConditionalRoutedAttention.Builder smallAttention() {
        return ConditionalRoutedAttention.builder().setDim(DIM).setNumHeavyTokensQ(6).setNumHeavyTokensKv(8)
                .optLightDimHead(8).optLightHeads(2).optLightWindowSize(8).optHeavyDimHead(8).optHeavyHeads(4);
    }

    @Test
    void buildingBlocks() {
        trains(FeedForward.builder().setDim(DIM).optMult(2).build(), m -> new NDList(x(m, 9)));
        trains(SelfAttention.builder().setDim(DIM).optDimHead(8).optHeads(2).optPrenorm(true).build(),
                m -> new NDList(x(m, 9)));
        trains(LocalMHA.builder().setDim(DIM).setWindowSize(4).optDimHead(8).optHeads(2).optPrenorm(true).build(),
                m -> new NDList(x(m, 11), mask(m, 11)));
        trains(Attention.builder().setDim(DIM).optDimHead(8).optHeads(4).build(), m -> {
            NDArray context = m.randomNormal(new Shape(2, 2, 7, DIM));
            context.setName("context");
            NDArray q = x(m, 5);
            q.setName("x");
            return new NDList(q, context);
        });
    }

    /**
     * DJL's {@code mul(Number)} frees its scalar while autograd still reads it in backward; our scaled products use
     * native constants, so a garbage collection between forward and backward changes no gradient.
     */
    @Test
    void gradientsSurviveGarbageCollection() throws InterruptedException {
        try (NDManager m = NDManager.newBaseManager()) {
            LocalMHA light = LocalMHA.builder().setDim(DIM).setWindowSize(4).optDimHead(8).optHeads(2).build();
            Attention heavy = Attention.builder().setDim(DIM).optDimHead(8).optHeads(2).build();
            light.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            heavy.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            NDArray input = m.randomNormal(new Shape(2, 9, DIM));
            float[] reference = null;
            for (boolean collect : new boolean[] {false, true}) {
                NDArray x = input.duplicate();
                x.setRequiresGradient(true);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    ParameterStore ps = new ParameterStore(m, false);
                    NDArray y = heavy.attend(ps, light.apply(ps, x, null, true), null, null, null, null, null, null,
                            true).sum();
                    List<ByteBuffer> reuse = new ArrayList<>();
                    if (collect) {
                        // free the Java buffers of any scalar operands, then reuse that memory with NaN bit patterns
                        System.gc();
                        Thread.sleep(100);
                        for (int i = 0; i < 4096; i++) {
                            reuse.add(ByteBuffer.allocateDirect(4).putInt(0, 0x7fc00000));
                        }
                    }
                    gc.backward(y);
                }
                float[] grad = x.getGradient().toFloatArray();
                if (reference == null) {
                    reference = grad;
                } else {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(reference, grad, 1e-6f);
                }
            }
        }
    }

    @Test
    void routerGradientReachesRoutingToken() {
        trains(new RoutedSum(CoordinateDescentRouter.builder().setDim(DIM).optNumRoutingTokens(2).build(), 6),
                m -> new NDList(x(m, 24)));
    }

    @Test
    void routedFeedForward() {
        trains(ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(6).build(),
                m -> new NDList(x(m, 23), mask(m, 23)));
    }

    @Test
    void routedAttention() {
        trains(smallAttention().optNumRoutedKv(2).optRotaryEmb(true).optMultiplyKeysByScore(true)
                        .optMultiplyQueriesByScore(true).build(),
                m -> new NDList(x(m, 21), mask(m, 21)));
    }

    @Test
    void routedTransformerBlock() {
        trains(ConditionalRoutedTransformerBlock.builder().setDim(DIM).setNumHeavyAttnTokensQ(6)
                        .setNumHeavyAttnTokensKv(8).setNumHeavyFfTokens(7).optLightDimHead(8).optLightHeads(2)
                        .optLightWindowSize(8).optHeavyDimHead(8).optHeavyHeads(4).build(),
                m -> new NDList(x(m, 22), mask(m, 22)));
    }

    @Test
    void routedCrossAttention() {
        trains(ConditionalRoutedCrossAttention.builder().setDim(DIM).setNumTokensQ(5).setNumTokensKv(9)
                        .optDimHead(8).optHeads(4).optKvRoutingTokens(2).optRouteBlockSize(8)
                        .optRouterKwargs(CoordinateDescentRouter.builder().optCosineSimRouting(true)).build(),
                m -> new NDList(x(m, 12), x(m, 30)));
    }

    /** The router under a stand-in heavy branch: a linear map of the routed tokens, weighted by their scores. */
    private static final class RoutedSum extends AbstractBlock {
        private final CoordinateDescentRouter router;
        private final Linear proj;
        private final int k;

        RoutedSum(CoordinateDescentRouter router, int k) {
            this.router = addChildBlock("router", router);
            this.proj = addChildBlock("proj", Linear.builder().setUnits(DIM).build());
            this.k = k;
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            RouterReturn r = router.route(ps, inputs.head(), k, null, training);
            NDArray heavy = proj.forward(ps, new NDList(r.routedTokens()), training).head();
            return new NDList(heavy.mul(r.scores().expandDims(-1)).sum(new int[] {1}));
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            router.initialize(manager, dataType, inputShapes);
            proj.initialize(manager, dataType, new Shape(1, DIM));
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    private static NDArray x(NDManager m, int n) {
        return m.randomNormal(new Shape(2, n, DIM));
    }

    private static NDArray mask(NDManager m, int n) {
        return m.arange(n).lt(n - 4).expandDims(0).concat(m.ones(new Shape(1, n)).gt(0), 0);
    }

    private static void trains(Block block, Function<NDManager, NDList> inputs) {
        Engine.getInstance().setRandomSeed(7);
        try (Model model = Model.newInstance("colt5-train")) {
            model.setBlock(block);
            DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.l2Loss())
                    .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(3e-2f)).build());
            try (Trainer trainer = model.newTrainer(config)) {
                NDList batch = inputs.apply(trainer.getManager());
                NDArray target = null;
                trainer.initialize(batch.getShapes());
                List<Float> losses = new ArrayList<>();
                for (int step = 0; step < STEPS; step++) {
                    try (GradientCollector gc = trainer.newGradientCollector()) {
                        NDArray y = trainer.forward(batch).head();
                        target = target != null ? target : trainer.getManager().randomNormal(y.getShape());
                        NDArray l = y.sub(target).square().mean();
                        losses.add(l.getFloat());
                        gc.backward(l);
                    }
                    if (step == 0) {
                        assertEveryParameterHasGradient(block);
                    }
                    trainer.step();
                }
                assertTrue(losses.get(STEPS - 1) < losses.get(0),
                        block.getClass().getSimpleName() + ": loss did not decrease: " + losses);
            }
        }
    }

    private static void assertEveryParameterHasGradient(Block block) {
        for (Map.Entry<String, Parameter> e : StateDicts.parameters(block).entrySet()) {
            Parameter p = e.getValue();
            if (!p.requiresGradient()) {
                continue;
            }
            float g = p.getArray().getGradient().abs().sum().getFloat();
            assertTrue(g > 0, block.getClass().getSimpleName() + ": no gradient for " + e.getKey());
        }
    }
}
