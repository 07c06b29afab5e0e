package dev.condjl.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

/** {@link ConstantCache}: built once, outlives the caller's manager and scopes, bounded, correct when full. */
class ConstantCacheTest {

    private record Key(int value) {}

    private static NDArray build(NDManager m, int value, AtomicInteger builds) {
        builds.incrementAndGet();
        return m.full(new Shape(2), value, DataType.FLOAT32, m.getDevice());
    }

    /**
     * A copy of a cached array in the caller's manager: reading a GPU array's values makes a host copy in the
     * array's own manager, which would count as held by the cache.
     */
    private static NDArray copy(NDArray cached, NDManager call) {
        return call.zeros(cached.getShape(), cached.getDataType()).addi(cached);
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
                assertArrayEquals(new float[] {3, 3}, copy(again, call).toFloatArray());
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
                    assertArrayEquals(new float[] {v, v}, copy(a, call).toFloatArray());
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

    /** A scalar is one shared 0-dim array per value, dtype and device, with the value and dtype asked for. */
    @Test
    void scalarsAreSharedPerValueAndDtype() {
        try (ConstantCache cache = new ConstantCache(4, 100); NDManager call = NDManager.newBaseManager()) {
            NDArray like = call.zeros(new Shape(1));
            NDArray half = cache.scalar(like, 0.5f, DataType.FLOAT32);
            assertSame(half, cache.scalar(like, 0.5f, DataType.FLOAT32));
            assertEquals(new Shape(), half.getShape());
            assertEquals(0.5f, copy(half, call).getFloat());
            NDArray index = cache.scalar(like, 7, DataType.INT64);
            assertEquals(DataType.INT64, index.getDataType());
            assertEquals(7L, copy(index, call).getLong());
            assertNotSame(half, cache.scalar(like, 0.5f, DataType.FLOAT16));
            assertEquals(3, cache.size(like.getDevice()));
        }
    }
}
