package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link IndexViews#broadcastTrailing}, on DJL's default device: a view equal to DJL's expand-and-broadcast, also of a
 * strided, offset column and over several new axes, that gathers and scatters as the DJL index does; other dtypes and
 * negative sizes are refused naming them.
 */
class IndexViewsTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableWithTheLibrary() {
        assertEquals("", IndexViews.unavailableReason());
    }

    @Test
    void equalsDjlsBroadcastAndIndexesRows() {
        // the odd columns of (3, 4) positions: strided and offset
        NDArray positions = manager.create(new long[] {2, 0, 1, 3, 0, 2, 1, 1, 3, 2, 0, 0}, new Shape(3, 4))
                .get(":, 1::2");
        NDArray view = IndexViews.broadcastTrailing(positions, new Shape(5));
        NDArray djl = positions.expandDims(-1).broadcast(new Shape(3, 2, 5));
        assertEquals(new Shape(3, 2, 5), view.getShape());
        assertArrayEquals(djl.toLongArray(), view.toLongArray());
        NDArray rows = manager.arange(3f * 4 * 5).reshape(3, 4, 5);
        assertArrayEquals(rows.gather(djl, 1).toFloatArray(), rows.gather(view, 1).toFloatArray());
        NDArray values = manager.ones(new Shape(3, 2, 5)).neg();
        assertArrayEquals(rows.scatter(djl, values, 1).toFloatArray(), rows.scatter(view, values, 1).toFloatArray());
        NDArray twoAxes = IndexViews.broadcastTrailing(positions, new Shape(2, 3));
        assertArrayEquals(positions.expandDims(-1).expandDims(-1).broadcast(new Shape(3, 2, 2, 3)).toLongArray(),
                twoAxes.toLongArray());
        NDArray mask = positions.gt(manager.create(1L));
        assertArrayEquals(mask.expandDims(-1).broadcast(new Shape(3, 2, 4)).toBooleanArray(),
                IndexViews.broadcastTrailing(mask, new Shape(4)).toBooleanArray());
    }

    @Test
    void refusesArraysThatCouldCarryAGradientAndNegativeSizes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> IndexViews.broadcastTrailing(manager.ones(new Shape(2)), new Shape(3)));
        assertTrue(e.getMessage().contains("x must be int64 or boolean (the view carries no gradient), got float32"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> IndexViews.broadcastTrailing(manager.zeros(new Shape(2), DataType.INT64), new Shape(-1)));
        assertTrue(e.getMessage().contains("trailing sizes must be >= 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexViews.broadcastTrailing(null, new Shape(1)));
        assertTrue(e.getMessage().contains("x must not be null"), e.getMessage());
    }
}
