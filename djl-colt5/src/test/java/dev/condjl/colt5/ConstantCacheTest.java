package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

/** {@link ConstantCache}: built once, outlives the caller's manager and scopes, bounded, correct when full. */
class ConstantCacheTest {

    private record Key(int value) {}

    private static NDArray build(NDManager m, int value, AtomicInteger builds) {
        builds.incrementAndGet();
        return m.full(new Shape(2), value, DataType.FLOAT32, m.getDevice());
    }

    @Test
    void buildsOnceAndOutlivesTheCallersManagerAndScope() {
        AtomicInteger builds = new AtomicInteger();
        try (ConstantCache cache = new ConstantCache(4, 100)) {
            NDArray first;
            try (NDManager call = NDManager.newBaseManager(); NDScope scope = new NDScope()) {
                NDArray like = call.zeros(new Shape(1));
                first = cache.get(like, new Key(3), m -> build(m, 3, builds));
                assertNotSame(call, first.getManager());
            }
            try (NDManager call = NDManager.newBaseManager()) {
                NDArray again = cache.get(call.zeros(new Shape(1)), new Key(3), m -> build(m, 3, builds));
                assertSame(first, again);
                assertArrayEquals(new float[] {3, 3}, again.toFloatArray());
            }
            assertEquals(1, builds.get());
            assertEquals(1, cache.size(first.getDevice()));
        }
    }

    @Test
    void stopsGrowingAtItsBoundAndStillAnswers() {
        AtomicInteger builds = new AtomicInteger();
        try (ConstantCache cache = new ConstantCache(3, 100); NDManager call = NDManager.newBaseManager()) {
            NDArray like = call.zeros(new Shape(1));
            for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 10; i++) {
                    int v = i;
                    NDArray a = cache.get(like, new Key(v), m -> build(m, v, builds));
                    assertArrayEquals(new float[] {v, v}, a.toFloatArray());
                    // beyond the bound an array is the caller's, freed with its manager
                    assertEquals(i >= 3, a.getManager() == call, "key " + i);
                }
            }
            assertEquals(3, cache.size(like.getDevice()));
            assertEquals(3 + 2 * 7, builds.get());
        }
    }

    @Test
    void elementBudgetBoundsTheCacheToo() {
        AtomicInteger builds = new AtomicInteger();
        try (ConstantCache cache = new ConstantCache(10, 5); NDManager call = NDManager.newBaseManager()) {
            NDArray like = call.zeros(new Shape(1));
            for (int i = 0; i < 4; i++) {
                int v = i;
                cache.get(like, new Key(v), m -> build(m, v, builds));
            }
            // two arrays of 2 elements fit in 5, a third does not
            assertEquals(2, cache.size(like.getDevice()));
        }
    }

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
