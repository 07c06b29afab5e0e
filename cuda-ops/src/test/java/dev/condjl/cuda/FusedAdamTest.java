package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
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
