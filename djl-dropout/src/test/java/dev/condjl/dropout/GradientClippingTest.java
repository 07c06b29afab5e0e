package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.loss.Loss;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/** Global-norm clipping, PyTorch's {@code clip_grad_norm_}. */
class GradientClippingTest {

    private static final Device[] CPU = {Device.cpu()};

    /** Two parameters whose gradients are (3, 4) and (0, 12): global norm 13. */
    private static List<Parameter> withGradients(NDManager manager) {
        Parameter a = parameter("a", manager);
        Parameter b = parameter("b", manager);
        try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
            NDArray loss = manager.create(new float[] {3, 4}).mul(a.getArray()).sum()
                    .add(manager.create(new float[] {0, 12}).mul(b.getArray()).sum());
            collector.backward(loss);
        }
        return List.of(a, b);
    }

    private static Parameter parameter(String name, NDManager manager) {
        Parameter p = Parameter.builder().setName(name).setType(Parameter.Type.WEIGHT)
                .optShape(new Shape(2)).optInitializer(Initializer.ONES).build();
        p.initialize(manager, DataType.FLOAT32);
        return p;
    }

    @Test
    void scalesAllGradientsByTheGlobalNorm() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            List<Parameter> params = withGradients(manager);
            double norm = GradientClipping.clipByGlobalNorm(new ParameterStore(manager, false), params, CPU, 1.0);
            assertEquals(13.0, norm, 1e-5);
            float k = (float) (1.0 / (13.0 + 1e-6));
            assertArrayEquals(new float[] {3 * k, 4 * k}, params.get(0).getArray().getGradient().toFloatArray(),
                    1e-6f);
            assertArrayEquals(new float[] {0, 12 * k}, params.get(1).getArray().getGradient().toFloatArray(),
                    1e-6f);
        }
    }

    @Test
    void scalesInPlaceLikeMultiplyingByTheFloatFactor() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            NDArray single = manager.create(new float[] {3, -7, 1e-3f});
            NDArray half = manager.create(new float[] {3, -7}).toType(DataType.FLOAT16, false);
            double factor = 1.0 / 3.0;
            GradientClipping.scale(List.of(List.of(single), List.of(half)), factor);
            // the device factor gives exactly what the former muli((float) factor) gave, and keeps each dtype
            assertArrayEquals(new float[] {3 * (float) factor, -7 * (float) factor, 1e-3f * (float) factor},
                    single.toFloatArray());
            assertEquals(DataType.FLOAT16, half.getDataType());
            assertArrayEquals(new float[] {1f, -2.333f}, half.toType(DataType.FLOAT32, false).toFloatArray(),
                    2e-3f);
        }
    }

    @Test
    void nativeNormEqualsTheNormOfDjlOps() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            manager.getEngine().setRandomSeed(8);
            List<List<NDArray>> floats = new ArrayList<>();
            List<List<NDArray>> doubles = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                NDArray g = manager.randomNormal(new Shape(i + 1, 33));
                floats.add(List.of(g));
                // float64 gradients are not the native kernels': DJL ops compute their norm
                doubles.add(List.of(g.toType(DataType.FLOAT64, false)));
            }
            double fused = GradientClipping.globalNorm(floats);
            double composed = GradientClipping.globalNorm(doubles);
            assertEquals(composed, fused, 1e-9 * composed);
            GradientClipping.scale(floats, 0.5);
            assertEquals(composed / 2, GradientClipping.globalNorm(floats), 1e-9 * composed);
        }
    }

    @Test
    void leavesSmallGradientsAlone() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            List<Parameter> params = withGradients(manager);
            double norm = GradientClipping.clipByGlobalNorm(new ParameterStore(manager, false), params, CPU, 20.0);
            assertEquals(13.0, norm, 1e-5);
            assertArrayEquals(new float[] {0, 12}, params.get(1).getArray().getGradient().toFloatArray());
        }
    }

    @Test
    void sumsCopiesOfOneParameterBeforeTheNorm() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            NDArray a0 = manager.create(new float[] {1, 2});
            NDArray a1 = manager.create(new float[] {2, 2});
            NDArray b0 = manager.create(new float[] {0, 1});
            NDArray b1 = manager.create(new float[] {0, 1});
            double norm = GradientClipping.globalNorm(List.of(List.of(a0, a1), List.of(b0, b1)));
            assertEquals(Math.sqrt(9 + 16 + 4), norm, 1e-5);
        }
    }

    @Test
    void rejectsANonPositiveLimit() {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> GradientClipping.clipByGlobalNorm(new ParameterStore(manager, false), List.of(), CPU, 0));
            assertEquals("maxNorm (0.0) must be > 0", e.getMessage());
        }
    }

    @Test
    void clipsASingleDeviceTrainersGradients() {
        try (Model model = Model.newInstance("clip", Device.cpu())) {
            model.setBlock(Linear.builder().setUnits(1).optBias(false).build());
            try (Trainer trainer = model.newTrainer(new DefaultTrainingConfig(Loss.l2Loss())
                    .optDevices(new Device[] {Device.cpu()}).optInitializer(Initializer.ONES, p -> true))) {
                trainer.initialize(new Shape(1, 2));
                NDManager manager = trainer.getManager();
                try (GradientCollector collector = trainer.newGradientCollector()) {
                    // d/dw sum(x w) = x = (6, 8): norm 10
                    NDArray out = trainer.forward(new ai.djl.ndarray.NDList(manager.create(new float[][] {{6, 8}})))
                            .head();
                    collector.backward(out.sum());
                }
                double norm = GradientClipping.clipByGlobalNorm(trainer, 5.0);
                assertEquals(10.0, norm, 1e-5);
                NDArray w = model.getBlock().getParameters().get(0).getValue().getArray();
                assertArrayEquals(new float[] {3, 4}, w.getGradient().toFloatArray(), 1e-5f);
            }
        }
    }
}
