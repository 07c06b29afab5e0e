package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.tracker.Tracker;
import dev.condjl.cuda.FusedAdam;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The one-device update of {@code condjl train} ({@link FusedAdam#step} on the model's parameters) trains the CLI's
 * model exactly as {@code trainer.step()} does (DJL's parameter server, which hands {@link FusedAdam#update} a copy
 * of each gradient), with and without a weight parametrization, and both leave every gradient at zero for the next
 * step. Each run replays the same seed, so random draws (DropConnect masks, routing noise) are the same in both.
 */
class DirectStepTest {

    private static final int B = 4;
    private static final int STEPS = 3;

    @ParameterizedTest(name = "dropout {0}")
    @CsvSource({"none, 0", "weight, 0.2"})
    void directStepEqualsTrainerStep(String dropout, double rate) throws IOException {
        ModelConfig config = TrainingRunTest.smallConfig(dropout, rate, 0, "BATCH_SUBSET");
        List<Map<String, float[]>> viaTrainer = train(config, false);
        List<Map<String, float[]>> direct = train(config, true);
        for (int step = 0; step < STEPS; step++) {
            Map<String, float[]> expected = viaTrainer.get(step);
            Map<String, float[]> actual = direct.get(step);
            assertEquals(expected.keySet(), actual.keySet());
            for (String key : expected.keySet()) {
                assertArrayEquals(expected.get(key), actual.get(key), key + " after step " + (step + 1));
            }
        }
        Map<String, float[]> start = viaTrainer.get(STEPS);
        // the heavy branches' zero-initialised layers may take a few steps to receive a gradient
        List<String> still = start.keySet().stream().filter(k -> !allZero(start.get(k)))
                .filter(k -> Arrays.equals(start.get(k), direct.get(STEPS - 1).get(k))).toList();
        assertEquals(List.of(), still, "parameters that did not move");
    }

    /**
     * Trains {@link #STEPS} steps; returns the weights after each, then the starting weights. Checks after every
     * step that the gradients are zero.
     */
    private static List<Map<String, float[]>> train(ModelConfig config, boolean direct) throws IOException {
        Engine.getEngine("PyTorch").setRandomSeed(11);
        List<Map<String, float[]>> out = new ArrayList<>();
        try (Model model = Model.newInstance("direct-step", Device.cpu(), "PyTorch")) {
            RoutedModel block = new RoutedModel(config);
            model.setBlock(block);
            FusedAdam adam = FusedAdam.adamWBuilder().optLearningRateTracker(Tracker.fixed(0.01f)).build();
            try (Trainer trainer = model.newTrainer(new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                    .optOptimizer(adam).optDevices(new Device[] {Device.cpu()}))) {
                trainer.initialize(new Shape(B, config.seqLen()));
                Map<String, float[]> start = weights(block);
                SplittableRandom data = new SplittableRandom(5);
                for (int step = 0; step < STEPS; step++) {
                    Sample batch = config.task(null).sample(data, B);
                    TrainingRun.step(trainer, block, batch, 1.0, direct ? adam : null, null);
                    out.add(weights(block));
                    for (var p : block.getParameters()) {
                        Parameter parameter = p.getValue();
                        if (parameter.requiresGradient()) {
                            try (NDArray grad = parameter.getArray().getGradient()) {
                                assertEquals(0f, grad.abs().max().getFloat(), p.getKey() + ": gradient after step "
                                        + (step + 1) + (direct ? " (direct)" : " (trainer)"));
                            }
                        }
                    }
                }
                out.add(start);
            }
        }
        return out;
    }

    private static boolean allZero(float[] v) {
        for (float x : v) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static Map<String, float[]> weights(RoutedModel block) {
        Map<String, float[]> out = new LinkedHashMap<>();
        block.getParameters().forEach(p -> out.put(p.getKey(), p.getValue().getArray().toFloatArray()));
        return out;
    }
}
