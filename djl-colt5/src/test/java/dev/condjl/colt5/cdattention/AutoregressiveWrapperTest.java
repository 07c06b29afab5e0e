package dev.condjl.colt5.cdattention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.condjl.colt5.RoutedModelFixtures;
import org.junit.jupiter.api.Test;

/** Loss, training and sampling of {@link AutoregressiveWrapper} (spec colt5.md §7.4). */
class AutoregressiveWrapperTest {

    private static Transformer tiny(int seqLen) {
        return Transformer.builder()
                .setNumTokens(20)
                .setDim(16)
                .setSeqLen(seqLen)
                .setDepth(1)
                .optDimHead(8)
                .optHeads(2)
                .optAttnNullKv(1)
                .build();
    }

    @Test
    void greedyGenerationMatchesFixture() {
        try (NDManager manager = NDManager.newBaseManager()) {
            RoutedModelFixtures fx = RoutedModelFixtures.read(manager, "cd_generate_greedy.safetensors");
            NDArray prompt = fx.get("prompt");
            AutoregressiveWrapper wrapper = new AutoregressiveWrapper(tiny(8));
            wrapper.initialize(manager, DataType.FLOAT32, new Shape(2, 9));
            RoutedModelFixtures.read(manager, "cd_generate_greedy.safetensors").load(wrapper.getNet());
            // int((1 - 0.95) * 20) = 1 logit survives the filter: sampling is the arg max; 3 + 7 > seqLen 8 slides
            NDArray tokens = wrapper.generate(new ParameterStore(manager, false), prompt, 7, 0.7, 0.95);
            assertEquals(new Shape(2, 7), tokens.getShape());
            assertArrayEquals(fx.get("tokens").toLongArray(), tokens.toLongArray());
        }
    }

    @Test
    void sampledTokensStayInsideTheTopKFilter() {
        Engine.getInstance().setRandomSeed(3);
        try (NDManager manager = NDManager.newBaseManager()) {
            AutoregressiveWrapper wrapper = new AutoregressiveWrapper(tiny(16));
            wrapper.initialize(manager, DataType.FLOAT32, new Shape(1, 5));
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray prompt = manager.create(new long[] {1, 2, 3}).reshape(1, 3);
            // keeps int(0.2 * 20) = 4 logits
            NDArray tokens = wrapper.generate(ps, prompt, 6, 2.0, 0.8);
            NDArray seq = prompt.concat(tokens, 1);
            for (int i = 0; i < 6; i++) {
                NDArray logits = wrapper.getNet().forward(ps, new NDList(seq.get(":, :" + (3 + i))), false)
                        .head().get("0, -1");
                long[] top4 = logits.topK(4, 0).get(1).toLongArray();
                long token = seq.getLong(0, 3 + i);
                assertTrue(java.util.Arrays.stream(top4).anyMatch(t -> t == token), "step " + i + ": " + token);
            }
        }
    }

    @Test
    void gumbelSamplingFollowsTheSoftmax() {
        Engine.getInstance().setRandomSeed(5);
        try (NDManager manager = NDManager.newBaseManager()) {
            int draws = 20000;
            NDArray logits = manager.create(new float[] {0f, (float) Math.log(2), (float) Math.log(4), -Float.MAX_VALUE})
                    .reshape(1, 4)
                    .repeat(0, draws);
            NDArray samples = AutoregressiveWrapper.sample(logits);
            double[] expected = {1 / 7.0, 2 / 7.0, 4 / 7.0, 0};
            for (int v = 0; v < 4; v++) {
                double freq = samples.eq(v).toType(DataType.FLOAT64, false).mean().getDouble();
                assertEquals(expected[v], freq, 0.015, "token " + v);
            }
        }
    }

    @Test
    void aFewAdamStepsLowerTheLoss() {
        Engine.getInstance().setRandomSeed(11);
        Transformer net = Transformer.builder()
                .setNumTokens(20)
                .setDim(16)
                .setSeqLen(12)
                .setDepth(1)
                .optDimHead(8)
                .optHeads(2)
                .optAttnUseCoorDescent(true)
                .optFfUseCoorDescent(true)
                .optFfCoorDescentSparsityK(8)
                .optLearnedSparsityK(true)
                .build();
        try (Model model = Model.newInstance("cd-lm")) {
            model.setBlock(new AutoregressiveWrapper(net));
            // the wrapper returns its own loss; the config's loss is never evaluated
            DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.l2Loss())
                    .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.01f)).build());
            try (Trainer trainer = model.newTrainer(config)) {
                NDArray ids = trainer.getManager().randomInteger(0, 20, new Shape(4, 11), DataType.INT64);
                trainer.initialize(ids.getShape());
                float first = Float.NaN;
                float last = Float.NaN;
                for (int step = 0; step < 8; step++) {
                    try (GradientCollector gc = trainer.newGradientCollector()) {
                        NDArray loss = trainer.forward(new NDList(ids)).head();
                        gc.backward(loss);
                        last = loss.getFloat();
                        first = step == 0 ? last : first;
                    }
                    trainer.step();
                }
                assertTrue(last < first - 0.1, "loss " + first + " -> " + last);
            }
        }
    }

    @Test
    void rejectsAFilterThatKeepsNothing() {
        try (NDManager manager = NDManager.newBaseManager()) {
            AutoregressiveWrapper wrapper = new AutoregressiveWrapper(tiny(8));
            wrapper.initialize(manager, DataType.FLOAT32, new Shape(1, 3));
            NDArray prompt = manager.create(new long[] {1}).reshape(1, 1);
            ParameterStore ps = new ParameterStore(manager, false);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> wrapper.generate(ps, prompt, 2, 1.0, 0.99));
            assertTrue(e.getMessage().contains("= 0 logits"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> wrapper.generate(ps, prompt, 2, 0.0, 0.5));
        }
    }
}
