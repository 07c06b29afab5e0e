package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link CondjlOps#cast} on DJL's default device: the values {@code toType} gives, a gradient that flows back
 * converted, float16 keys and values taken as they are by the float16 attention, and clear errors for other dtypes.
 */
class DifferentiableCastTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(7);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void roundsAsToTypeAndPassesTheGradientBackConverted() {
        NDArray x = manager.randomNormal(new Shape(3, 50)).mul(1000);
        x.setRequiresGradient(true);
        NDArray w = manager.randomNormal(new Shape(3, 50));
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray half = CondjlOps.cast(x, DataType.FLOAT16);
            assertEquals(DataType.FLOAT16, half.getDataType());
            assertArrayEquals(x.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray(),
                    half.toType(DataType.FLOAT32, false).toFloatArray());
            NDArray back = CondjlOps.cast(half, DataType.FLOAT32);
            assertEquals(DataType.FLOAT32, back.getDataType());
            gc.backward(back.mul(w).sum());
        }
        // d(sum(w·x16))/dx: w through float16 and back
        assertArrayEquals(w.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray(),
                x.getGradient().toFloatArray());
    }

    @Test
    void float16AttentionTakesFloat16KeysAndValuesAsTheyAre() {
        NDArray q = manager.randomNormal(new Shape(2, 24, 16));
        NDArray k = manager.randomNormal(new Shape(2, 30, 16));
        NDArray v = manager.randomNormal(new Shape(2, 30, 8));
        NDArray bias = manager.randomNormal(new Shape(2, 24, 30));
        NDArray fromFloat32 = CondjlOps.scaledDotProductAttention(q, k, v, bias, 0.25, AttentionPrecision.FLOAT16);
        NDArray fromFloat16 = CondjlOps.scaledDotProductAttention(q, CondjlOps.cast(k, DataType.FLOAT16),
                CondjlOps.cast(v, DataType.FLOAT16), CondjlOps.cast(bias, DataType.FLOAT16), 0.25,
                AttentionPrecision.FLOAT16);
        assertEquals(DataType.FLOAT32, fromFloat16.getDataType());
        assertArrayEquals(fromFloat32.toFloatArray(), fromFloat16.toFloatArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.scaledDotProductAttention(q, CondjlOps.cast(k, DataType.FLOAT16), v, null, 0.25,
                        AttentionPrecision.INPUT));
        assertTrue(e.getMessage().contains("k must be float32, got float16"), e.getMessage());
    }

    @Test
    void refusesOtherDtypes() {
        NDArray ints = manager.arange(6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.cast(ints, DataType.FLOAT16));
        assertTrue(e.getMessage().contains("x must be float32 or float16, got int32"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.cast(manager.ones(new Shape(2)), DataType.FLOAT64));
        assertTrue(e.getMessage().contains("cast goes to float32 or float16, got float64"), e.getMessage());
    }
}
