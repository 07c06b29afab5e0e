package dev.condjl.cuda;

import static dev.condjl.cuda.Refusals.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link OptimizerOps}' list kernels against plain sums and DJL's {@code muli}, and the errors that name bad input,
 * on the CPU and, where there is one, the GPU.
 */
class OptimizerOpsTest {

    static List<Device> devices() {
        List<Device> devices = new ArrayList<>(List.of(Device.cpu()));
        if (Engine.getInstance().getGpuCount() > 0) {
            devices.add(Device.gpu());
        }
        return devices;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void sumOfSquaresEqualsTheDoubleSum(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(3);
            // more tensors than one launch takes, one empty, one long
            List<NDArray> arrays = new ArrayList<>();
            for (int i = 0; i < 130; i++) {
                arrays.add(manager.randomNormal(new Shape(i % 7, 3)));
            }
            arrays.add(manager.randomNormal(new Shape(70001)));
            double expected = 0;
            for (NDArray a : arrays) {
                for (float v : a.toFloatArray()) {
                    expected += (double) v * v;
                }
            }
            NDArray sum = OptimizerOps.sumOfSquares(arrays);
            assertEquals(DataType.FLOAT64, sum.getDataType());
            assertEquals(new Shape(), sum.getShape());
            assertEquals(device, sum.getDevice());
            assertEquals(expected, sum.getDouble(), 1e-12 * expected);
            assertEquals(sum.getDouble(), OptimizerOps.sumOfSquares(arrays).getDouble(), 0.0, "deterministic");
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void scaleInPlaceEqualsMuliByAFloat32Scalar(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            manager.getEngine().setRandomSeed(4);
            List<NDArray> arrays = new ArrayList<>();
            List<NDArray> expected = new ArrayList<>();
            NDArray factor = manager.full(new Shape(), 0.37f);
            for (int i = 0; i < 100; i++) {
                NDArray a = manager.randomNormal(new Shape(1 + i % 5, 1 + i));
                arrays.add(a);
                expected.add(a.duplicate().muli(factor));
            }
            OptimizerOps.scaleInPlace(arrays, 0.37f);
            for (int i = 0; i < arrays.size(); i++) {
                assertArrayEquals(expected.get(i).toFloatArray(), arrays.get(i).toFloatArray(), "array " + i);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void badInputIsNamed(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            NDArray a = manager.ones(new Shape(3, 4));
            NDArray doubles = manager.ones(new Shape(3, 4), DataType.FLOAT64);
            assertMessage("the array list must not be empty",
                    () -> OptimizerOps.sumOfSquares(List.of()));
            assertMessage("tensor 1 of the list: a list tensor must be float32, got float64",
                    () -> OptimizerOps.sumOfSquares(List.of(a, doubles)));
            assertMessage("tensor 0 of the list (4, 3) must be contiguous",
                    () -> OptimizerOps.scaleInPlace(List.of(a.transpose()), 2f));
            OptimizerOps.AdamStep step = new OptimizerOps.AdamStep(0.1f, 0.1f, 0f, 1f, -1f, 0.9f, 0.999f, 1e-8f, true);
            assertMessage("mean shape (4, 3) must equal weight shape (3, 4)",
                    () -> OptimizerOps.adamUpdate(a, a.duplicate(), manager.zeros(new Shape(4, 3)),
                            manager.zeros(new Shape(3, 4)), step));
            assertMessage("weight, mean and variance must be distinct tensors",
                    () -> OptimizerOps.adamUpdate(a, a.duplicate(), a, manager.zeros(new Shape(3, 4)), step));
            assertMessage("variance (3, 4) must be contiguous",
                    () -> OptimizerOps.adamUpdate(a, a.duplicate(), manager.zeros(new Shape(3, 4)),
                            manager.zeros(new Shape(4, 3)).transpose(), step));
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void badListInputIsNamedBeforeAnythingIsWritten(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            OptimizerOps.AdamStep step = new OptimizerOps.AdamStep(0.1f, 0.1f, 0f, 1f, -1f, 0.9f, 0.999f, 1e-8f, true);
            OptimizerOps.AdamStep otherBetas =
                    new OptimizerOps.AdamStep(0.2f, 0.2f, 0f, 1f, -1f, 0.8f, 0.999f, 1e-8f, true);
            NDArray w0 = manager.ones(new Shape(3, 4));
            NDArray w1 = manager.ones(new Shape(5));
            NDArray g0 = manager.ones(new Shape(3, 4));
            List<NDArray> weights = List.of(w0, w1);
            List<NDArray> means = List.of(manager.zeros(new Shape(3, 4)), manager.zeros(new Shape(5)));
            List<NDArray> variances = List.of(manager.zeros(new Shape(3, 4)), manager.zeros(new Shape(5)));
            assertMessage("one gradient, mean, variance and step per weight (2), got 1",
                    () -> OptimizerOps.adamUpdateAll(weights, List.of(g0), means, variances, List.of(step, step),
                            false));
            assertMessage("the parameter list must not be empty",
                    () -> OptimizerOps.adamUpdateAll(List.of(), List.of(), List.of(), List.of(), List.of(), false));
            assertMessage("differs from step 0",
                    () -> OptimizerOps.adamUpdateAll(weights, List.of(g0, manager.ones(new Shape(5))), means,
                            variances, List.of(step, otherBetas), false));
            assertMessage("parameter 1: grad shape (4,) must equal weight shape (5,)",
                    () -> OptimizerOps.adamUpdateAll(weights, List.of(g0, manager.ones(new Shape(4))), means,
                            variances, List.of(step, step), false));
            assertMessage("parameter 1: grad (5, 2) must be contiguous",
                    () -> OptimizerOps.adamUpdateAll(List.of(w0, manager.ones(new Shape(5, 2))),
                            List.of(g0, manager.ones(new Shape(2, 5)).transpose()),
                            List.of(means.get(0), manager.zeros(new Shape(5, 2))),
                            List.of(variances.get(0), manager.zeros(new Shape(5, 2))), List.of(step, step), true));
            assertMessage("parameter 1: a gradient that is zeroed must be distinct from weight, mean and variance",
                    () -> OptimizerOps.adamUpdateAll(weights, List.of(g0, w1), means, variances, List.of(step, step),
                            true));
            // parameter 0 was valid, but nothing runs before every parameter is checked
            assertArrayEquals(manager.ones(new Shape(3, 4)).toFloatArray(), w0.toFloatArray());
            assertArrayEquals(manager.ones(new Shape(3, 4)).toFloatArray(), g0.toFloatArray());
        }
    }

}
