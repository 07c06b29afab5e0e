package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The shares {@code p = q / max(Σq, m)} that {@link CondjlOps#coorDescentWithWeights} returns with the weights, on
 * every device here: rows held in one block and rows spread over several (on a GPU), a fully masked row (Σq = 0),
 * and a float16 row whose Σq is past float16's largest number.
 */
class CoorDescentSharesTest {

    private static final EpsSchedule ROUTER = new EpsSchedule(20, 0.03, 4, 0.7);

    static List<Device> devices() {
        List<Device> devices = new ArrayList<>(List.of(Device.cpu()));
        if (Engine.getInstance().getGpuCount() > 0 && CondjlOps.supports(Device.gpu())) {
            devices.add(Device.gpu());
        }
        return devices;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void sharesAreTheWeightsOverTheirRowSum(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            for (int n : new int[] {80, 20000}) {
                float[] s = HostArrays.gaussian(new Random(n), 3 * n, 1.0);
                boolean[] keep = new boolean[3 * n];
                for (int i = 0; i < keep.length; i++) {
                    keep[i] = i < n || i >= 2 * n; // row 1 fully masked
                }
                NDArray x = manager.create(s, new Shape(3, n));
                NDArray mask = manager.create(keep, new Shape(3, n));
                NDList yqp = CondjlOps.coorDescentWithWeights(x, manager.create(new float[] {(float) Math.log(n / 8)}),
                        mask, ROUTER);
                assertEquals(3, yqp.size());
                float[] q = yqp.get(1).toFloatArray();
                float[] p = yqp.get(2).toFloatArray();
                for (int row = 0; row < 3; row++) {
                    double total = 0;
                    for (int i = row * n; i < (row + 1) * n; i++) {
                        total += q[i];
                    }
                    assertEquals(row != 1, total > 0, "n " + n + " row " + row + ": only the masked row has no weight");
                    for (int i = row * n; i < (row + 1) * n; i++) {
                        double expected = total > 0 ? q[i] / total : 0;
                        assertEquals(expected, p[i], 1e-6 * expected + 1e-30, "n " + n + " entry " + i);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void float16SharesStayFiniteWhereTheRowSumOverflowsFloat16(Device device) {
        try (NDManager manager = NDManager.newBaseManager(device)) {
            int n = 8192;
            NDArray x = manager.create(HostArrays.gaussian(new Random(3), n, 0.01), new Shape(1, n))
                    .toType(DataType.FLOAT16, false);
            // k = n/2 of nearly equal scores: every y near 0.5, q = y/ε near 17, Σq near 140,000 > 65,504
            NDList yqp = CondjlOps.coorDescentWithWeights(x, manager.create(new float[] {(float) Math.log(n / 2)}),
                    null, ROUTER);
            assertEquals(DataType.FLOAT16, yqp.get(2).getDataType());
            float[] q = yqp.get(1).toType(DataType.FLOAT32, false).toFloatArray();
            float[] p = yqp.get(2).toType(DataType.FLOAT32, false).toFloatArray();
            double total = 0;
            for (float v : q) {
                total += v;
            }
            assertTrue(total > 65504, "the row sum " + total + " must overflow float16 for this test");
            double shareSum = 0;
            for (int i = 0; i < n; i++) {
                assertEquals(q[i] / total, p[i], 2e-3 * q[i] / total + 1e-7, "entry " + i);
                shareSum += p[i];
            }
            assertEquals(1.0, shareSum, 1e-2);
            float[] y = yqp.get(0).toType(DataType.FLOAT32, false).toFloatArray();
            assertArrayEquals(y, CondjlOps.coorDescentLogK(x, manager.create(new float[] {(float) Math.log(n / 2)}),
                    null, ROUTER).toType(DataType.FLOAT32, false).toFloatArray(), "y is the same with or without weights");
        }
    }
}
