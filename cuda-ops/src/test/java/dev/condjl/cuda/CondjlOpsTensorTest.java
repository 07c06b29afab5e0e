package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Random;

/** The DJL-tensor entry points: same numbers as the raw CPU kernels, validation before any data is touched. */
class CondjlOpsTensorTest {

    private static final EpsSchedule ROUTER = new EpsSchedule(20, 0.03, 4, 0.7);
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void loadsAndReportsItsDevices() {
        assertTrue(CondjlOps.isAvailable(), CondjlOps.unavailableReason());
        assertEquals("", CondjlOps.unavailableReason());
        assertTrue(CondjlOps.supports(Device.cpu()));
        assertEquals(CondjlOps.cudaAvailable(), CondjlOps.supports(Device.gpu()));
        assertEquals(CondjlOps.cudaAvailable(), CondjlOps.cudaUnavailableReason().isEmpty());
    }

    @Test
    void forwardOnTensorsEqualsRawKernel() {
        float[] s = HostArrays.gaussian(new Random(5), 2 * 3 * 50, 1.0);
        NDArray x = manager.create(s, new Shape(2, 3, 50));
        NDArray y = CondjlOps.coorDescent(x, 7f, null, ROUTER);
        assertEquals(x.getShape(), y.getShape());
        assertEquals(DataType.FLOAT32, y.getDataType());
        assertEquals(manager, y.getManager());
        assertArrayEquals(CoorDescentKernelTest.forward(s, null, null, 7f, 50, ROUTER), y.toFloatArray());
    }

    @Test
    void copiesNonContiguousAndBroadcastInputs() {
        NDArray s = manager.randomNormal(new Shape(40, 6));
        NDArray t = s.transpose();  // (6, 40) view with strides (1, 6)
        NDArray tc = t.duplicate();
        NDArray mask = manager.randomUniform(0, 1, new Shape(1, 40)).lt(0.8f);
        NDArray wide = mask.broadcast(new Shape(6, 40));  // stride-0 view
        NDArray logk = manager.create(new float[] {1, 2, 3, 4, 5, 6}).log().reshape(6, 1);
        NDArray y = CondjlOps.coorDescentLogK(t, logk, wide, ROUTER);
        NDArray yc = CondjlOps.coorDescentLogK(tc, logk, wide.duplicate(), ROUTER);
        assertArrayEquals(yc.toFloatArray(), y.toFloatArray());
        for (int r = 0; r < 6; r++) {
            float[] row = y.get(r).toFloatArray();
            float sum = 0;
            for (float v : row) {
                sum += v;
            }
            assertTrue(sum > 0 && sum <= r + 1 + 1e-3, "row " + r + " sums to " + sum);
        }
        NDArray one = CondjlOps.coorDescentLogK(tc, manager.create(new float[] {(float) Math.log(3)}), null, ROUTER);
        assertArrayEquals(CondjlOps.coorDescent(tc, 3f, null, ROUTER).toFloatArray(), one.toFloatArray());
    }

    @Test
    void float16ComputesInFloat32() {
        NDArray s = manager.randomNormal(new Shape(4, 256)).toType(DataType.FLOAT16, false);
        NDArray y16 = CondjlOps.coorDescent(s, 20f, null, ROUTER);
        assertEquals(DataType.FLOAT16, y16.getDataType());
        NDArray y32 = CondjlOps.coorDescent(s.toType(DataType.FLOAT32, false), 20f, null, ROUTER);
        float[] a = y16.toType(DataType.FLOAT32, false).toFloatArray();
        assertTrue(HostArrays.maxAbsDiff(a, y32.toFloatArray()) <= 5e-4, "fp16 output = rounded fp32 output");
        NDArray g16 = manager.randomNormal(new Shape(4, 256)).toType(DataType.FLOAT16, false);
        NDArray ds16 = CondjlOps.coorDescentBackward(y16, g16, ROUTER.epsFinal());
        assertEquals(DataType.FLOAT16, ds16.getDataType());
    }

    @Test
    void float16OutputsAreTheFloat32OutputsRoundedAsLibtorchRounds() {
        // wide scores: many outputs fall in float16's subnormal range [2^-24, 2^-14), the rest round normally
        NDArray s = manager.randomNormal(0, 0.2f, new Shape(4, 256), DataType.FLOAT32).toType(DataType.FLOAT16, false);
        NDArray y16 = CondjlOps.coorDescent(s, 20f, null, ROUTER);
        NDArray y32 = CondjlOps.coorDescent(s.toType(DataType.FLOAT32, false), 20f, null, ROUTER);
        float[] expected = y32.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray();
        float[] actual = y16.toType(DataType.FLOAT32, false).toFloatArray();
        int subnormal = 0;
        for (float v : expected) {
            subnormal += v > 0 && v < 0x1p-14f ? 1 : 0;
        }
        assertTrue(subnormal > 20, "only " + subnormal + " outputs in float16's subnormal range");
        assertArrayEquals(expected, actual);
    }

    @Test
    void backwardOnTensorsEqualsRawKernel() {
        float[] s = HostArrays.gaussian(new Random(6), 3 * 80, 1.0);
        float[] g = HostArrays.gaussian(new Random(7), 3 * 80, 1.0);
        NDArray x = manager.create(s, new Shape(3, 80));
        NDArray y = CondjlOps.coorDescent(x, 10f, null, ROUTER);
        NDArray ds = CondjlOps.coorDescentBackward(y, manager.create(g, new Shape(3, 80)), ROUTER.epsFinal());
        assertArrayEquals(CoorDescentKernelTest.backward(y.toFloatArray(), g, 80, ROUTER.epsFinal()),
                ds.toFloatArray());

        NDList yq = CondjlOps.coorDescentWithWeights(x, manager.create(new float[] {(float) Math.log(10)}), null,
                ROUTER);
        assertArrayEquals(y.toFloatArray(), yq.get(0).toFloatArray());
        float[] yy = y.toFloatArray();
        float[] q = yq.get(1).toFloatArray();
        for (int i = 0; i < q.length; i++) {
            assertEquals(yy[i] < 1 ? yy[i] / ROUTER.epsFinal() : 0f, q[i], "weight " + i);
        }
    }

    @Test
    void rejectsBadInputsWithClearMessages() {
        NDArray s = manager.randomNormal(new Shape(2, 5));
        NDArray mask = manager.ones(new Shape(2, 5), DataType.BOOLEAN);
        expect("s must be float32 or float16, got int32",
                () -> CondjlOps.coorDescent(s.toType(DataType.INT32, false), 2f, null, ROUTER));
        expect("s must have at least 1 dimension", () -> CondjlOps.coorDescent(manager.create(1f), 2f, null, ROUTER));
        expect("mask shape (2, 4) must equal s shape (2, 5)",
                () -> CondjlOps.coorDescent(s, 2f, manager.ones(new Shape(2, 4), DataType.BOOLEAN), ROUTER));
        expect("mask must be bool, got float32", () -> CondjlOps.coorDescent(s, 2f, mask.toType(DataType.FLOAT32,
                false), ROUTER));
        expect("k must be a finite number > 0, got 0", () -> CondjlOps.coorDescent(s, 0f, null, ROUTER));
        expect("k must be a finite number > 0, got -1", () -> CondjlOps.coorDescent(s, -1f, mask, ROUTER));
        expect("k must be a finite number > 0, got nan", () -> CondjlOps.coorDescent(s, Float.NaN, mask, ROUTER));
        expect("logk must hold one value, or one per row with shape (2,) or (2, 1) for s (2, 5), got (3,)",
                () -> CondjlOps.coorDescentLogK(s, manager.zeros(new Shape(3)), null, ROUTER));
        expect("grad shape (2, 4) must equal y shape (2, 5)",
                () -> CondjlOps.coorDescentBackward(s, manager.zeros(new Shape(2, 4)), 0.03f));
        expect("epsFinal must be > 0", () -> CondjlOps.coorDescentBackward(s, s, 0f));
        expect("s must not be null", () -> CondjlOps.coorDescent(null, 2f, null, ROUTER));
        assertFalse(s.isReleased(), "inputs survive failed calls");
    }

    private static void expect(String message, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(message), () -> "expected '" + message + "' in '" + e.getMessage() + "'");
    }
}
