package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

/** Local attention's cached window bias ({@link dev.condjl.topk.ConstantCache}): a fresh one's values; masks apply. */
class WindowBiasCacheTest {

    /** The window bias served from the shared cache equals a freshly built one, with and without padding. */
    @Test
    void cachedWindowBiasEqualsAFreshOne() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray like = m.zeros(new Shape(1));
            for (LocalAttention.Window window : new LocalAttention.Window[] {
                new LocalAttention.Window(4, false, 1, 1, true),
                new LocalAttention.Window(4, true, 1, 0, true),
                new LocalAttention.Window(3, false, 2, 1, false)}) {
                for (long n : new long[] {8, 9, 2}) {
                    NDArray cached = LocalAttention.windowBias(like, n, window);
                    assertSame(cached, LocalAttention.windowBias(like, n, window));
                    NDArray fresh = LocalAttention.buildWindowBias(m, like.getDevice(), n, window);
                    assertEquals(fresh.getShape(), cached.getShape());
                    assertArrayEquals(fresh.toFloatArray(), cached.toFloatArray(), window + " n=" + n);
                }
            }
        }
    }

    /** A key-padding mask still removes keys on top of the cached window bias. */
    @Test
    void maskStillAppliedOverTheCachedBias() {
        try (NDManager m = NDManager.newBaseManager()) {
            LocalAttention.Window window = new LocalAttention.Window(4, false, 1, 1, true);
            NDArray q = m.randomNormal(new Shape(1, 1, 8, 2));
            NDArray k = m.randomNormal(new Shape(1, 1, 8, 2));
            NDArray v = m.arange(8f).reshape(1, 1, 8, 1);
            boolean[] keep = {true, true, true, true, true, false, true, true};
            NDArray mask = m.create(keep).reshape(1, 8);
            NDArray masked = LocalAttention.attend(q, k, v, mask, window);
            NDArray unmasked = LocalAttention.attend(q, k, v, null, window);
            // value 5 only ever comes from the masked key 5: removing it changes every query that saw it
            NDArray onlyFive = m.create(new float[] {0, 0, 0, 0, 0, 1, 0, 0}).reshape(1, 1, 8, 1);
            NDArray vFive = LocalAttention.attend(q, k, onlyFive, mask, window);
            assertArrayEquals(new float[8], vFive.toFloatArray(), 0f);
            assertFalse(Arrays.equals(masked.toFloatArray(), unmasked.toFloatArray()));
        }
    }
}
