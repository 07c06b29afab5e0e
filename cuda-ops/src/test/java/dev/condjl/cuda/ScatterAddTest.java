package dev.condjl.cuda;

import static dev.condjl.cuda.Refusals.assertMessage;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link ScatterAdd#scatterAdd}, on DJL's default device: available on libtorch 2.7.1 and later; with distinct indices
 * per row it equals {@code base.scatter(index, base.gather(index) + values)} bit for bit in value and in both
 * gradients (float32 and float16, a broadcast index view); repeated indices accumulate; bad input is refused naming it.
 */
class ScatterAddTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(5);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableWithTheDispatcher() {
        assertEquals("", ScatterAdd.unavailableReason());
    }

    @Test
    void equalsGatherAddScatterBitForBitWithGradients() {
        for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT16}) {
            // (2, 9, 6) rows; 4 distinct positions per batch element, as a top-k returns them
            NDArray base = manager.randomNormal(new Shape(2, 9, 6)).toType(type, false);
            NDArray values = manager.randomNormal(new Shape(2, 4, 6)).toType(type, false);
            NDArray positions = manager.create(new long[] {7, 0, 3, 8, 2, 5, 1, 4}, new Shape(2, 4));
            // a stride-0 view over the row width, as the routers build it
            NDArray index = positions.expandDims(-1).broadcast(values.getShape());
            NDArray upstream = manager.randomNormal(base.getShape()).toType(type, false);
            NDList fused = valueAndGradients(upstream, a -> ScatterAdd.scatterAdd(a[0], 1, index, a[1]), base, values);
            NDList composed = valueAndGradients(upstream,
                    a -> a[0].scatter(index, a[0].gather(index, 1).add(a[1]), 1), base, values);
            String[] names = {"value", "dbase", "dvalues"};
            for (int i = 0; i < 3; i++) {
                assertEquals(composed.get(i).getShape(), fused.get(i).getShape(), type + " " + names[i]);
                assertArrayEquals(floats(composed.get(i)), floats(fused.get(i)), 0f, type + " " + names[i]);
            }
        }
    }

    @Test
    void accumulatesRepeatedIndicesAlongAnyAxis() {
        NDArray base = manager.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
        NDArray index = manager.create(new long[] {1, 1, 0, 0}, new Shape(2, 2));
        NDArray values = manager.create(new float[] {10, 20, 30, 40}, new Shape(2, 2));
        // along axis -1: row 0 gets 10 + 20 at column 1, row 1 gets 30 + 40 at column 0
        assertArrayEquals(new float[] {1, 32, 3, 74, 5, 6},
                ScatterAdd.scatterAdd(base, -1, index, values).toFloatArray());
        // along axis 0: column 0 gets 10 at row 1 and 30 at row 0; column 1 gets 20 at row 1 and 40 at row 0
        assertArrayEquals(new float[] {31, 42, 3, 14, 25, 6},
                ScatterAdd.scatterAdd(base, 0, index, values).toFloatArray());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, base.toFloatArray(), "base is not modified");
    }

    @Test
    void refusesBadInputNamingIt() {
        NDArray base = manager.zeros(new Shape(2, 5, 3));
        NDArray index = manager.zeros(new Shape(2, 4, 3), DataType.INT64);
        NDArray values = manager.ones(new Shape(2, 4, 3));
        assertMessage("index must be int64, got int32",
                () -> ScatterAdd.scatterAdd(base, 1, index.toType(DataType.INT32, false), values));
        assertMessage("values must be float32 like base, got float16",
                () -> ScatterAdd.scatterAdd(base, 1, index, values.toType(DataType.FLOAT16, false)));
        assertMessage("base must be float32 or float16, got int64",
                () -> ScatterAdd.scatterAdd(index, 1, index, values));
        assertMessage("index (2, 4, 3) and values (2, 4) must have one shape",
                () -> ScatterAdd.scatterAdd(base, 1, index, manager.ones(new Shape(2, 4))));
        assertMessage("axis 3 is out of range for base (2, 5, 3)", () -> ScatterAdd.scatterAdd(base, 3, index, values));
        assertMessage("index (2, 6, 3) is larger than base (2, 5, 3) on axis 1 (only axis 0 may differ)",
                () -> ScatterAdd.scatterAdd(base, 0, manager.zeros(new Shape(2, 6, 3), DataType.INT64),
                        manager.ones(new Shape(2, 6, 3))));
        assertMessage("values must not be null", () -> ScatterAdd.scatterAdd(base, 1, index, null));
        assertFalse(ScatterAdd.supports(base, -4, index, values));
        assertTrue(ScatterAdd.supports(base, -2, index, values));
    }

    @Test
    void refusesIndicesOutOfRangeOnTheCpu() {
        try (NDManager cpu = NDManager.newBaseManager(ai.djl.Device.cpu())) {
            NDArray base = cpu.zeros(new Shape(1, 3, 1));
            NDArray index = cpu.create(new long[] {3}, new Shape(1, 1, 1));
            RuntimeException e = assertThrows(RuntimeException.class,
                    () -> ScatterAdd.scatterAdd(base, 1, index, cpu.ones(new Shape(1, 1, 1))).toFloatArray());
            assertTrue(e.getMessage().contains("scatter_add"), e.getMessage());
        }
    }

    private static float[] floats(NDArray a) {
        return a.toType(DataType.FLOAT32, false).toFloatArray();
    }

}
