package dev.condjl.cuda;

import static dev.condjl.cuda.Refusals.assertMessage;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Unfold#unfold}, on DJL's default device: available on libtorch 2.7.1 and later; overlapping windows equal the
 * stacked slices bit for bit, in value and gradient (which sums over the windows an entry is in); bad arguments are
 * refused naming them.
 */
class UnfoldTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(3);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableWithTheDispatcher() {
        assertEquals("", Unfold.unavailableReason());
    }

    @Test
    void equalsStackedSlicesWithGradients() {
        // (2, 10, 3) along axis 1: windows of 4 every 3 start at 0, 3, 6 -> (2, 3, 3, 4)
        NDArray x = manager.randomNormal(new Shape(2, 10, 3));
        NDArray upstream = manager.randomNormal(new Shape(2, 3, 3, 4));
        NDList unfolded = valueAndGradients(upstream, a -> Unfold.unfold(a[0], -2, 4, 3), x);
        NDList sliced = valueAndGradients(upstream, a -> {
            NDList windows = new NDList();
            for (int start = 0; start <= 6; start += 3) {
                windows.add(a[0].get(":, " + start + ":" + (start + 4) + ", :").swapAxes(1, 2));
            }
            return NDArrays.stack(windows, 1);
        }, x);
        assertEquals(new Shape(2, 3, 3, 4), unfolded.get(0).getShape());
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(sliced.get(i).toFloatArray(), unfolded.get(i).toFloatArray(), 0f, i == 0 ? "value"
                    : "gradient");
        }
    }

    @Test
    void refusesArgumentsThatDoNotFit() {
        NDArray x = manager.zeros(new Shape(2, 5));
        assertMessage("axis 2 is out of range for x (2, 5)", () -> Unfold.unfold(x, 2, 1, 1));
        assertMessage("windows of 6 every 1 do not fit axis 1 of x (2, 5)", () -> Unfold.unfold(x, -1, 6, 1));
        assertMessage("windows of 2 every 0 do not fit axis 1 of x (2, 5)", () -> Unfold.unfold(x, 1, 2, 0));
        assertMessage("x must not be null", () -> Unfold.unfold(null, 0, 1, 1));
    }

}
