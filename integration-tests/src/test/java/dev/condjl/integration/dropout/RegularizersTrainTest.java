package dev.condjl.integration.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.translate.TranslateException;

import dev.condjl.colt5.ConditionalRoutedFeedForward;
import dev.condjl.dropout.LearnedDropout;
import dev.condjl.dropout.Parametrized;
import dev.condjl.dropout.PenalizedLoss;
import dev.condjl.dropout.PenaltyCoefficient;
import dev.condjl.dropout.VariationalNoise;
import dev.condjl.dropout.WeightDropout;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Each djl-dropout regularizer wrapped around a routed feed-forward (djl-colt5) and a DJL {@code Linear}, trained
 * with DJL's {@code Trainer} and {@code EasyTrain.fit} on a small regression task (x: (32, 8, 16) → y = tanh(x·A)).
 */
class RegularizersTrainTest {

    private static final int DIM = 16;

    private static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        List<Supplier<Block>> targets = List.of(
                () -> ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(4).build(),
                () -> Linear.builder().setUnits(DIM).build());
        for (String regularizer : List.of("weight-dropout", "noise", "noise+dropout", "learned-dropout")) {
            for (int t = 0; t < targets.size(); t++) {
                String name = t == 0 ? "ConditionalRoutedFeedForward" : "Linear";
                cases.add(Arguments.of(regularizer, name, targets.get(t)));
            }
        }
        return cases.stream();
    }

    private static Block regularize(String regularizer, Block target) {
        switch (regularizer) {
            case "weight-dropout":
                return Parametrized.wrap(target).registerAll(new WeightDropout(0.1f, 2));
            case "noise":
                return Parametrized.wrap(target).registerAll(new VariationalNoise(0.01f));
            case "noise+dropout":
                return Parametrized.wrap(target).registerAll(new VariationalNoise(0.01f))
                        .registerAll(new WeightDropout(0.1f, 2));
            default:
                return new SequentialBlock().add(target)
                        .add(LearnedDropout.builder().setEmbedDim(DIM).setNumHeads(4).build());
        }
    }

    @ParameterizedTest(name = "{0} around {1}")
    @MethodSource("cases")
    void trainsWithTheTrainer(String regularizer, String targetName, Supplier<Block> target)
            throws IOException, TranslateException {
        Engine.getInstance().setRandomSeed(11);
        boolean learned = regularizer.equals("learned-dropout");
        Loss l2 = Loss.l2Loss();
        PenalizedLoss penalized = new PenalizedLoss(l2, 1, PenaltyCoefficient.exponential(1e-2, 0.01));
        try (Model model = Model.newInstance(regularizer);
                NDManager data = NDManager.newBaseManager()) {
            Block block = target.get();
            model.setBlock(regularize(regularizer, block));
            DefaultTrainingConfig config = new DefaultTrainingConfig(learned ? penalized : l2)
                    .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.02f)).build());
            if (learned) {
                config.addTrainingListeners(penalized.stepCounter());
            }
            NDArray x = data.randomNormal(new Shape(32, 8, DIM));
            NDArray y = x.matMul(data.randomNormal(new Shape(DIM, DIM)).mul(0.3f)).tanh();
            ArrayDataset dataset = new ArrayDataset.Builder().setData(x).optLabels(y).setSampling(8, true).build();
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(8, 8, DIM));
                NDArray before = snapshot(block);
                float initial = evalLoss(trainer, l2, x, y);
                EasyTrain.fit(trainer, 6, dataset, null);
                float trained = evalLoss(trainer, l2, x, y);
                assertTrue(trained < 0.7f * initial,
                        targetName + " " + regularizer + ": " + initial + " -> " + trained);
                assertFalse(before.allClose(snapshot(block)), "parameters did not move");
                if (learned) {
                    assertEquals(24, penalized.getStep(), "4 batches x 6 epochs");
                }
            }
        }
    }

    /** All parameters of the regularized target, flattened and copied. */
    private static NDArray snapshot(Block block) {
        NDList flat = new NDList();
        for (Parameter p : block.getParameters().values()) {
            flat.add(p.getArray().duplicate().flatten());
        }
        return NDArrays.concat(flat);
    }

    private static float evalLoss(Trainer trainer, Loss l2, NDArray x, NDArray y) {
        try (NDManager scope = x.getManager().newSubManager()) {
            NDArray input = x.duplicate();
            input.attach(scope);
            NDList out = trainer.evaluate(new NDList(input));
            return l2.evaluate(new NDList(y), new NDList(out.get(0))).getFloat();
        }
    }
}
