package dev.condjl.stochastic;

import static dev.condjl.stochastic.TestArrays.assertClose;
import static dev.condjl.stochastic.TestArrays.rowBitsEqual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.Pair;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The Block wrapper around DJL's own blocks, spec dropout-stochastic.md §1.2, §1.4, §2.4. */
class StochasticResidualTest extends ManagedTest {

    private static final int D = 8;

    private static ParameterStore ps;

    @BeforeAll
    static void setUp() {
        ps = new ParameterStore(manager, false);
    }

    private static Block mlp() {
        return new SequentialBlock()
                .add(LayerNorm.builder().axis(2).build())
                .add(Linear.builder().setUnits(2 * D).build())
                .add(Activation::gelu)
                .add(Linear.builder().setUnits(D).build());
    }

    private static Block attention() {
        return ScaledDotProductAttentionBlock.builder()
                .setEmbeddingSize(D)
                .setHeadCount(2)
                .optAttentionProbsDropoutProb(0)
                .build();
    }

    /** x (b, n, D) and a per-sample 0/1 attention mask (b, n, n) with the diagonal kept. */
    private static NDList attentionInputs(long b, long n) {
        NDArray x = manager.randomNormal(new Shape(b, n, D));
        NDArray mask =
                manager.randomUniform(0f, 1f, new Shape(b, n, n))
                        .gt(0.5f)
                        .logicalOr(manager.eye((int) n).toType(DataType.BOOLEAN, false))
                        .toType(DataType.FLOAT32, false);
        return new NDList(x, mask);
    }

    private static StochasticResidual wrap(
            Block branch, StochasticDepthMode mode, double p, NDList inputs) {
        StochasticResidual block =
                StochasticResidual.builder()
                        .setBranch(branch)
                        .optMode(mode)
                        .optDropProb(p)
                        .optLayerScale(0.5f)
                        .build();
        block.initialize(manager, DataType.FLOAT32, inputs.getShapes());
        return block;
    }

    @Test
    void evalIsThePlainResidualWithLayerScaleAndPassesTheMaskOn() {
        NDList in = attentionInputs(4, 5);
        StochasticResidual block = wrap(attention(), StochasticDepthMode.BATCH_SUBSET, 0.9, in);
        NDList out = block.forward(ps, in, false);
        NDArray r = block.getChildren().get(0).getValue().forward(ps, in, false).head();
        assertClose(in.head().add(r.mul(0.5f)), out.head(), 1e-6);
        assertSame(in.get(1), out.get(1));
        assertTrue(
                block.getParameters().keys().contains("02ls1_gamma"),
                block.getParameters().keys().toString());
        Parameter gamma = block.getParameters().get("02ls1_gamma");
        assertTrue(gamma.getArray().eq(0.5f).all().getBoolean());
    }

    @Test
    void batchSubsetTakesTheSameRowsOfEveryBatchInput() {
        NDList in = attentionInputs(10, 5);
        StochasticResidual block = wrap(attention(), StochasticDepthMode.BATCH_SUBSET, 0.5, in);
        // per-sample reference: the branch on the full batch, LayerScale 0.5, scale b/k = 2
        NDArray full =
                block.getChildren().get(0).getValue().forward(ps, in, false).head().mul(0.5f);
        NDArray x = in.head();
        NDArray out = block.forward(ps, in, true).head();
        int changed = 0;
        for (long i = 0; i < 10; i++) {
            if (!rowBitsEqual(x, out, i)) {
                changed++;
                assertClose(x.get(i).add(full.get(i).mul(2f)), out.get(i), 1e-5);
            }
        }
        assertEquals(5, changed);
    }

    @Test
    void autoUsesBatchSubsetAboveTheThresholdAndDropPathAtIt() {
        assertEquals(StochasticDepthMode.DROP_PATH, StochasticDepthMode.AUTO.resolve(0.1));
        assertEquals(
                StochasticDepthMode.BATCH_SUBSET,
                StochasticDepthMode.AUTO.resolve(Math.nextUp(0.1)));
        assertEquals(StochasticDepthMode.LAYER_DROP, StochasticDepthMode.LAYER_DROP.resolve(0.5));
        NDList in = new NDList(manager.randomNormal(new Shape(64, 3, D)));
        NDArray x = in.head();
        NDArray out = wrap(mlp(), StochasticDepthMode.AUTO, 0.4, in).forward(ps, in, true).head();
        int changed = 0;
        for (long i = 0; i < 64; i++) {
            changed += rowBitsEqual(x, out, i) ? 0 : 1;
        }
        assertEquals(38, changed, "AUTO at p=0.4 runs the branch on k=38 of 64 rows");
    }

    @Test
    void everyParameterGetsAGradientInEveryModeAtRate099() {
        for (StochasticDepthMode mode : StochasticDepthMode.values()) {
            for (boolean withMask : new boolean[] {true, false}) {
                Engine.getInstance().setRandomSeed(5);
                NDList in =
                        withMask
                                ? attentionInputs(4, 5)
                                : new NDList(manager.randomNormal(new Shape(4, 5, D)));
                StochasticResidual block = wrap(withMask ? attention() : mlp(), mode, 0.99, in);
                in.head()
                        .setRequiresGradient(true); // so backward runs even if no parameter is used
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(block.forward(ps, in, true).head().sum());
                }
                for (Pair<String, Parameter> p : block.getParameters()) {
                    NDArray g = JniUtils.getGradient((PtNDArray) p.getValue().getArray());
                    assertNotNull(
                            g, mode + " mask=" + withMask + ": no gradient for " + p.getKey());
                }
            }
        }
    }

    @Test
    void namedInputsKeepTheirNamesInEveryMode() {
        // CoLT5's blocks look inputs up by name ("x", "mask") once any input is named
        Block byName =
                new LambdaBlock(
                        l -> new NDList(l.get("x").mul(l.get("mask").expandDims(2)).tanh()));
        for (StochasticDepthMode mode : StochasticDepthMode.values()) {
            NDArray x = manager.randomNormal(new Shape(6, 5, D));
            x.setName("x");
            NDArray mask = manager.randomUniform(0f, 1f, new Shape(6, 5)).gt(0.3f);
            mask.setName("mask");
            NDList in = new NDList(x, mask);
            StochasticResidual block =
                    StochasticResidual.builder()
                            .setBranch(byName)
                            .optMode(mode)
                            .optDropProb(1.0)
                            .build();
            block.initialize(manager, DataType.FLOAT32, in.getShapes());
            for (boolean training : new boolean[] {true, false}) {
                NDList out = block.forward(ps, in, training);
                assertEquals("x", out.head().getName(), mode + " training=" + training);
                assertSame(mask, out.get(1));
            }
        }
    }

    @Test
    void seededRunsAreReproducible() {
        NDList in = new NDList(manager.randomNormal(new Shape(16, 3, D)));
        StochasticResidual block = wrap(mlp(), StochasticDepthMode.BATCH_SUBSET, 0.5, in);
        Engine.getInstance().setRandomSeed(21);
        NDArray a = block.forward(ps, in, true).head();
        Engine.getInstance().setRandomSeed(21);
        NDArray b = block.forward(ps, in, true).head();
        Engine.getInstance().setRandomSeed(22);
        NDArray c = block.forward(ps, in, true).head();
        assertTrue(a.contentEquals(b));
        assertFalse(a.contentEquals(c));
    }

    @Test
    void trainsWithDjlTrainerAndAlwaysDroppedLayersKeepTheirWeights() {
        StochasticResidual alwaysDropped =
                StochasticResidual.builder()
                        .setBranch(Linear.builder().setUnits(D).build())
                        .optMode(StochasticDepthMode.LAYER_DROP)
                        .optDropProb(1.0)
                        .build();
        SequentialBlock net =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(D).build())
                        .add(alwaysDropped)
                        .add(residualMlp(StochasticDepthMode.BATCH_SUBSET))
                        .add(residualMlp(StochasticDepthMode.DROP_PATH))
                        .add(Linear.builder().setUnits(1).build());
        Engine.getInstance().setRandomSeed(1);
        try (Model model = Model.newInstance("stochastic-depth-test")) {
            model.setBlock(net);
            DefaultTrainingConfig config =
                    new DefaultTrainingConfig(Loss.l2Loss())
                            .optOptimizer(
                                    Optimizer.sgd()
                                            .setLearningRateTracker(Tracker.fixed(0.05f))
                                            .build());
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(16, 4));
                NDManager m = trainer.getManager();
                NDArray x = m.randomNormal(new Shape(16, 4));
                NDArray y = x.sum(new int[] {1}, true);
                NDArray droppedBefore = firstParameter(alwaysDropped).duplicate();
                NDArray inputBefore =
                        firstParameter(net.getChildren().get(0).getValue()).duplicate();
                float firstLoss = Float.NaN;
                float loss = Float.NaN;
                for (int step = 0; step < 5; step++) {
                    try (GradientCollector gc = trainer.newGradientCollector()) {
                        NDArray pred = trainer.forward(new NDList(x)).head();
                        NDArray l = trainer.getLoss().evaluate(new NDList(y), new NDList(pred));
                        gc.backward(l);
                        loss = l.getFloat();
                    }
                    trainer.step();
                    firstLoss = step == 0 ? loss : firstLoss;
                }
                assertTrue(Float.isFinite(loss) && loss < firstLoss, firstLoss + " -> " + loss);
                assertTrue(droppedBefore.contentEquals(firstParameter(alwaysDropped)));
                assertFalse(
                        inputBefore.contentEquals(
                                firstParameter(net.getChildren().get(0).getValue())));
            }
        }
    }

    private static StochasticResidual residualMlp(StochasticDepthMode mode) {
        Block branch =
                new SequentialBlock()
                        .add(Linear.builder().setUnits(2 * D).build())
                        .add(Activation::relu)
                        .add(Linear.builder().setUnits(D).build());
        return StochasticResidual.builder()
                .setBranch(branch)
                .optMode(mode)
                .optDropProb(0.5)
                .optLayerScale(0.1f)
                .build();
    }

    private static NDArray firstParameter(Block block) {
        return block.getParameters().get(0).getValue().getArray();
    }

    @Test
    void builderValidates() {
        assertThrows(IllegalArgumentException.class, () -> StochasticResidual.builder().build());
        assertThrows(
                IllegalArgumentException.class,
                () -> StochasticResidual.builder().setBranch(mlp()).optDropProb(1.1).build());
        assertThrows(
                IllegalArgumentException.class,
                () -> StochasticResidual.builder().setBranch(mlp()).optMode(null).build());
    }
}
