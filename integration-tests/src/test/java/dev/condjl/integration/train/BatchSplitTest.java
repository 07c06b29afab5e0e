package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.condjl.dropout.GradientClipping;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * The batch split of {@code condjl train --devices gpu:0,1} ({@link TrainingRun#step}), proved on the CPU.
 *
 * <p>DJL cannot put two CPU "devices" in a {@code Trainer}: {@code Device.of("cpu", i)} is always {@code
 * Device.cpu()}, and the trainer's {@code ParameterStore} refuses a device twice ({@link #djlHasOneCpuDevice}). So the
 * multi-device path is checked piece by piece, at the lowest level that runs on one device:
 * <ul>
 *   <li>the split and the share weighting: one step with the batch in two halves (two forward and backward passes
 *       in one collector, both into the one parameter copy) gives the whole batch's loss, gradient, clipping norm
 *       and SGD update;</li>
 *   <li>the gradients two device copies would hold (each half alone, weighted by its share) sum to the whole
 *       batch's gradient, which is what DJL's {@code LocalParameterServer} forms, and {@link GradientClipping}'s
 *       norm over the two copies is the whole batch's norm: each copy counted once, summed before squaring;</li>
 *   <li>clipping reads the trainer's devices, not the parts: two parts on one device are not counted twice.</li>
 * </ul>
 * Only a run on two GPUs covers what is left: DJL mirroring the parameters onto the second device, the cross-device
 * gradient copy and sum, the optimizer updating each mirror, and the CUDA kernels ({@link TrainGpuTest}).
 *
 * <p>Tolerances: the halves reorder float32 sums (the loss mean over 8 rows, each weight gradient a sum over 8 × 64
 * token terms), whose rounding error is at most about 512 ulp of the largest term; 1e-4 of the largest element
 * covers that with a margin and is far below what a wrong share (a factor 2) or a double count changes.
 */
class BatchSplitTest {

    private static final int B = 8;
    private static final double REL = 1e-4;
    private static final float LR = 1f;

    @Test
    void djlHasOneCpuDevice() {
        assertEquals(Device.cpu(), Device.of("cpu", 1), "DJL maps every CPU id to the one CPU device");
        ModelConfig config = TrainingRunTest.smallConfig("none", 0, 0, "BATCH_SUBSET");
        try (Model model = Model.newInstance("two-cpus", Device.cpu(), "PyTorch")) {
            model.setBlock(new RoutedModel(config));
            DefaultTrainingConfig tc = new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                    .optDevices(new Device[] {Device.cpu(), Device.of("cpu", 1)});
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.newTrainer(tc));
            assertEquals("Duplicated devices are not allowed.", e.getMessage());
        }
        for (String spec : new String[] {"cpu,cpu", "cpu:0,1", "cpu:1"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceList.parse(spec));
            assertTrue(e.getMessage().contains("DJL has one CPU device"), e.getMessage());
        }
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                () -> DeviceList.parse("gpu:0,0"));
        assertTrue(twice.getMessage().contains("GPU 0 is named twice"), twice.getMessage());
        assertEquals(List.of(Device.cpu()), List.of(DeviceList.parse(" CPU ")));
    }

    @Test
    void twoHalvesTrainLikeTheWholeBatch() throws IOException {
        ModelConfig config = TrainingRunTest.smallConfig("none", 0, 0, "BATCH_SUBSET");
        Sample batch = config.task(null).sample(new SplittableRandom(7), B);
        try (Run whole = new Run(config); Run halves = new Run(config);
                Run first = new Run(config); Run second = new Run(config)) {
            assertClose(whole.weights(), halves.weights(), 0, "the runs start from the same weights");
            assertClose(whole.weights(), second.weights(), 0, "the runs start from the same weights");

            double wholeLoss = whole.backward(batch, Device.cpu());
            double halvesLoss = halves.backward(batch, Device.cpu(), Device.cpu());
            assertEquals(wholeLoss, halvesLoss, REL * wholeLoss, "the shares weight the halves' losses");
            Map<String, float[]> g = whole.gradients();
            assertClose(g, halves.gradients(), REL, "two halves into one copy: the whole batch's gradient");

            // what copies on two devices would hold: each half alone, weighted by its share
            first.backwardPart(batch, 0, B / 2);
            second.backwardPart(batch, B / 2, B);
            Map<String, float[]> g0 = first.gradients();
            Map<String, float[]> g1 = second.gradients();
            Map<String, float[]> sum = new LinkedHashMap<>();
            g0.forEach((k, v) -> {
                float[] s = v.clone();
                float[] w = g1.get(k);
                for (int i = 0; i < s.length; i++) {
                    s[i] += w[i];
                }
                sum.put(k, s);
            });
            assertClose(g, sum, REL, "the copies' gradients sum to the whole batch's");

            double norm = norm(g);
            double separately = Math.sqrt(square(norm(g0)) + square(norm(g1)));
            assertTrue(Math.abs(separately - norm) > 100 * REL * norm,
                    "the test tells summed from separate copies: " + separately + " vs " + norm);
            double copiesNorm;
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                List<List<NDArray>> copies = new ArrayList<>();
                g0.forEach((k, v) -> copies.add(List.of(m.create(v), m.create(g1.get(k)))));
                copiesNorm = GradientClipping.globalNorm(copies);
            }
            assertEquals(norm, copiesNorm, REL * norm, "the norm over two copies is the whole batch's norm");

            double clip = norm / 2;
            Map<String, float[]> w0 = whole.weights();
            assertEquals(norm, whole.clipAndUpdate(clip), REL * norm, "clipping norm, one part");
            assertEquals(norm, halves.clipAndUpdate(clip), REL * norm, "clipping norm, two parts: counted once");
            Map<String, float[]> wholeStep = minus(w0, whole.weights());
            assertClose(wholeStep, minus(w0, halves.weights()), REL, "the same SGD update");
            // SGD: w0 - w1 = lr * g * clip / norm, so the factor 0.5 shows that clipping acted once
            String some = g.keySet().iterator().next();
            int i = argMaxAbs(g.get(some));
            assertEquals(LR * g.get(some)[i] * clip / norm, wholeStep.get(some)[i],
                    REL * Math.abs(g.get(some)[i]), "the update is the clipped gradient");
        }
    }

    /** A CPU trainer with plain SGD (an update linear in the gradient) over a model from a fixed seed. */
    private static final class Run implements AutoCloseable {
        private final Model model;
        private final RoutedModel block;
        private final Trainer trainer;
        private final NDManager stepManager;

        Run(ModelConfig config) {
            Engine.getEngine("PyTorch").setRandomSeed(3);
            model = Model.newInstance("split", Device.cpu(), "PyTorch");
            block = new RoutedModel(config);
            model.setBlock(block);
            Optimizer sgd = Optimizer.sgd().setLearningRateTracker(Tracker.fixed(LR)).build();
            trainer = model.newTrainer(new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss()).optOptimizer(sgd)
                    .optDevices(new Device[] {Device.cpu()}));
            trainer.initialize(new Shape(B / 2, config.seqLen()));
            stepManager = trainer.getManager().newSubManager();
        }

        double backward(Sample batch, Device... parts) {
            return TrainingRun.backward(trainer, batch, parts, stepManager);
        }

        void backwardPart(Sample batch, int from, int to) {
            try (GradientCollector collector = trainer.newGradientCollector()) {
                TrainingRun.backwardPart(trainer, collector, batch, from, to, stepManager.newSubManager());
            }
        }

        double clipAndUpdate(double clip) {
            return TrainingRun.clipAndUpdate(trainer, block, clip, null);
        }

        Map<String, float[]> weights() {
            Map<String, float[]> out = new LinkedHashMap<>();
            block.getParameters().forEach(p -> out.put(p.getKey(), p.getValue().getArray().toFloatArray()));
            return out;
        }

        Map<String, float[]> gradients() {
            Map<String, float[]> out = new LinkedHashMap<>();
            for (var p : block.getParameters()) {
                Parameter parameter = p.getValue();
                if (parameter.requiresGradient()) {
                    try (NDArray grad = parameter.getArray().getGradient()) {
                        out.put(p.getKey(), grad.toFloatArray());
                    }
                }
            }
            return out;
        }

        @Override
        public void close() {
            stepManager.close();
            trainer.close();
            model.close();
        }
    }

    private static Map<String, float[]> minus(Map<String, float[]> a, Map<String, float[]> b) {
        Map<String, float[]> out = new LinkedHashMap<>();
        a.forEach((k, v) -> {
            float[] d = new float[v.length];
            for (int i = 0; i < v.length; i++) {
                d[i] = v[i] - b.get(k)[i];
            }
            out.put(k, d);
        });
        return out;
    }

    /** Each array of {@code actual} within {@code rel} of the largest magnitude in the expected array. */
    private static void assertClose(Map<String, float[]> expected, Map<String, float[]> actual, double rel,
            String what) {
        assertEquals(expected.keySet(), actual.keySet(), what);
        expected.forEach((k, e) -> {
            float[] a = actual.get(k);
            double tol = rel * Math.abs(e[argMaxAbs(e)]);
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], tol, what + ": " + k + "[" + i + "]");
            }
        });
    }

    private static int argMaxAbs(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (Math.abs(v[i]) > Math.abs(v[best])) {
                best = i;
            }
        }
        return best;
    }

    private static double norm(Map<String, float[]> g) {
        double s = 0;
        for (float[] v : g.values()) {
            for (float x : v) {
                s += (double) x * x;
            }
        }
        return Math.sqrt(s);
    }

    private static double square(double x) {
        return x * x;
    }
}
