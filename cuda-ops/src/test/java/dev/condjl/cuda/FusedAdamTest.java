package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link FusedAdam} follows DJL's {@code Adam} and {@code AdamW} step for step with weight decay, gradient rescaling
 * and clamping: bit for bit on a GPU, to float32 rounding on the CPU (libtorch's CPU kernels round differently from
 * its CUDA ones); and falls back to DJL's own update, bit for bit, where the native step cannot run.
 */
class FusedAdamTest {

    static List<Object[]> cases() {
        List<Object[]> cases = new ArrayList<>();
        List<Device> devices = new ArrayList<>(List.of(Device.cpu()));
        if (Engine.getInstance().getGpuCount() > 0) {
            devices.add(Device.gpu());
        }
        for (Device d : devices) {
            cases.add(new Object[] {d, false});
            cases.add(new Object[] {d, true});
        }
        return cases;
    }

    @ParameterizedTest(name = "{0}, decoupled {1}")
    @MethodSource("cases")
    void followsDjlStepForStep(Device device, boolean decoupled) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(5);
            NDArray start = manager.randomNormal(new Shape(37, 11));
            NDArray djlWeight = start.duplicate();
            NDArray fusedWeight = start.duplicate();
            Optimizer djl = djl(decoupled);
            Optimizer fused = fused(decoupled);
            for (int step = 0; step < 6; step++) {
                NDArray grad = manager.randomNormal(new Shape(37, 11));
                djl.update("w", djlWeight, grad);
                fused.update("w", fusedWeight, grad);
                float[] expected = djlWeight.toFloatArray();
                float[] actual = fusedWeight.toFloatArray();
                if (device.isGpu()) {
                    // the kernel rounds as libtorch's CUDA kernels do: the same bits as DJL's update
                    assertArrayEquals(expected, actual, "step " + step);
                    continue;
                }
                for (int i = 0; i < expected.length; i++) {
                    float tol = 1e-6f * (1 + Math.abs(expected[i]));
                    assertTrue(Math.abs(expected[i] - actual[i]) <= tol,
                            "step " + step + " element " + i + ": DJL " + expected[i] + ", fused " + actual[i]);
                }
            }
            float moved = fusedWeight.sub(start).abs().max().getFloat();
            assertTrue(moved > 1e-3f, "the weights did not move: " + moved);
        }
    }

    @ParameterizedTest(name = "{0}, decoupled {1}")
    @MethodSource("cases")
    void fallsBackToDjlBitForBitForFloat64(Device device, boolean decoupled) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(6);
            NDArray start = manager.randomNormal(new Shape(9, 4)).toType(DataType.FLOAT64, false);
            NDArray djlWeight = start.duplicate();
            NDArray fusedWeight = start.duplicate();
            Optimizer djl = djl(decoupled);
            Optimizer fused = fused(decoupled);
            for (int step = 0; step < 3; step++) {
                NDArray grad = manager.randomNormal(new Shape(9, 4)).toType(DataType.FLOAT64, false);
                djl.update("w", djlWeight, grad);
                fused.update("w", fusedWeight, grad);
            }
            assertArrayEquals(djlWeight.toDoubleArray(), fusedWeight.toDoubleArray());
        }
    }

    @ParameterizedTest(name = "{0}, decoupled {1}")
    @MethodSource("cases")
    void zeroesTheWeightsGradientAsDjlDoes(Device device, boolean decoupled) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(7);
            NDArray target = manager.randomNormal(new Shape(6, 5));
            NDArray djlWeight = manager.randomNormal(new Shape(6, 5));
            NDArray fusedWeight = djlWeight.duplicate();
            Optimizer djl = djl(decoupled);
            Optimizer fused = fused(decoupled);
            for (int step = 0; step < 4; step++) {
                for (NDArray w : List.of(djlWeight, fusedWeight)) {
                    w.setRequiresGradient(true);
                    try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
                        collector.backward(w.sub(target).square().sum());
                    }
                    NDArray expectedGrad = w.sub(target).mul(2);
                    // the gradient of this step alone: the last update zeroed the previous one
                    assertClose(expectedGrad.toFloatArray(), w.getGradient().toFloatArray(), 1e-6f, "step " + step);
                }
                djl.update("w", djlWeight, djlWeight.getGradient().duplicate());
                fused.update("w", fusedWeight, fusedWeight.getGradient().duplicate());
                assertEquals(0f, fusedWeight.getGradient().abs().max().getFloat(), "step " + step);
                assertClose(djlWeight.toFloatArray(), fusedWeight.toFloatArray(), device.isGpu() ? 0 : 1e-6f,
                        "step " + step);
            }
        }
    }

    @ParameterizedTest(name = "{0}, decoupled {1}")
    @MethodSource("cases")
    void stepUpdatesEveryParameterAsTheParameterServerDoes(Device device, boolean decoupled) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(8);
            Shape[] shapes = {new Shape(7, 3), new Shape(11), new Shape(2, 2, 5)};
            ParameterList fusedParams = new ParameterList();
            List<NDArray> djlWeights = new ArrayList<>();
            for (int i = 0; i < shapes.length; i++) {
                NDArray start = manager.randomNormal(shapes[i]);
                Parameter p = Parameter.builder().setName("p" + i).setType(Parameter.Type.WEIGHT)
                        .optRequiresGrad(i != 1).build();
                p.setArray(start.duplicate());
                fusedParams.add(p.getName(), p);
                djlWeights.add(start.duplicate());
            }
            NDArray frozenStart = fusedParams.get("p1").getArray().duplicate();
            NDArray firstStart = fusedParams.get("p0").getArray().duplicate();
            Optimizer djl = djl(decoupled);
            FusedAdam fused = (FusedAdam) fused(decoupled);
            for (int step = 0; step < 3; step++) {
                List<NDArray> targets = new ArrayList<>();
                for (Shape shape : shapes) {
                    targets.add(manager.randomNormal(shape));
                }
                backward(fusedParams.values().stream().map(Parameter::getArray).toList(), targets);
                backward(djlWeights, targets);
                for (int i = 0; i < shapes.length; i++) {
                    if (i != 1) {
                        // what DJL's LocalParameterServer hands the optimizer: a copy of the gradient
                        djl.update(fusedParams.valueAt(i).getId(), djlWeights.get(i),
                                djlWeights.get(i).getGradient().duplicate());
                    }
                }
                fused.step(fusedParams);
                for (int i = 0; i < shapes.length; i++) {
                    NDArray w = fusedParams.valueAt(i).getArray();
                    if (i == 1) {
                        assertArrayEquals(frozenStart.toFloatArray(), w.toFloatArray(), "a frozen parameter moved");
                        continue;
                    }
                    assertEquals(0f, w.getGradient().abs().max().getFloat(), "gradient of p" + i + ", step " + step);
                    assertClose(djlWeights.get(i).toFloatArray(), w.toFloatArray(), device.isGpu() ? 0 : 1e-6f,
                            "p" + i + ", step " + step);
                }
            }
            float moved = fusedParams.get("p0").getArray().sub(firstStart).abs().max().getFloat();
            assertTrue(moved > 1e-3f, "the weights did not move: " + moved);
        }
    }

    /** Backward of {@code Σ_i Σ (w_i − t_i)²} for the weights that take a gradient. */
    private static void backward(List<NDArray> weights, List<NDArray> targets) {
        for (int i = 0; i < weights.size(); i++) {
            if (i != 1) {
                weights.get(i).setRequiresGradient(true);
            }
        }
        try (GradientCollector collector = weights.get(0).getManager().getEngine().newGradientCollector()) {
            NDArray loss = null;
            for (int i = 0; i < weights.size(); i++) {
                if (i != 1) {
                    NDArray term = weights.get(i).sub(targets.get(i)).square().sum();
                    loss = loss == null ? term : loss.add(term);
                }
            }
            collector.backward(loss);
        }
    }

    private static void assertClose(float[] expected, float[] actual, float relTol, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            float tol = relTol * (1 + Math.abs(expected[i]));
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol,
                    what + " element " + i + ": expected " + expected[i] + ", got " + actual[i]);
        }
    }

    /** DJL's Adam or AdamW with the non-default options of {@link #fused}. */
    private static Optimizer djl(boolean decoupled) {
        if (decoupled) {
            return Optimizer.adamW().optLearningRateTracker(Tracker.fixed(0.02f)).optBeta1(0.8f).optBeta2(0.99f)
                    .optEpsilon(1e-6f).optWeightDecays(0.05f).setRescaleGrad(0.5f).optClipGrad(0.3f).build();
        }
        return Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.02f)).optBeta1(0.8f).optBeta2(0.99f)
                .optEpsilon(1e-6f).optWeightDecays(0.05f).setRescaleGrad(0.5f).optClipGrad(0.3f).build();
    }

    private static Optimizer fused(boolean decoupled) {
        return (decoupled ? FusedAdam.adamWBuilder() : FusedAdam.adamBuilder())
                .optLearningRateTracker(Tracker.fixed(0.02f)).optBeta1(0.8f).optBeta2(0.99f).optEpsilon(1e-6f)
                .optWeightDecays(0.05f).setRescaleGrad(0.5f).optClipGrad(0.3f).build();
    }
}
