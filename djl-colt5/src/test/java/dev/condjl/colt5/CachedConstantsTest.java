package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.ConstantCache;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

/**
 * The blocks' use of {@link ConstantCache}: the cached window bias equals a fresh one and masks still apply; no result
 * piles up in the cache.
 */
class CachedConstantsTest {

    /**
     * A routed transformer block (its routers, masked, and local attention) adds nothing to the cache's manager after
     * its first forward and backward: no result of an op with a cached first operand stays there.
     */
    @Test
    void routedBlockLeavesNothingInTheCache() {
        try (NDManager m = NDManager.newBaseManager()) {
            ConditionalRoutedTransformerBlock block = ConditionalRoutedTransformerBlock.builder().setDim(16)
                    .setNumHeavyAttnTokensQ(6).setNumHeavyAttnTokensKv(8).optNumRoutedKv(2).setNumHeavyFfTokens(7)
                    .optLightDimHead(8).optLightHeads(2).optLightWindowSize(8).optHeavyDimHead(8).optHeavyHeads(4)
                    .build();
            block.initialize(m, DataType.FLOAT32, new Shape(1, 1, 16));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray mask = m.randomUniform(0, 1, new Shape(2, 22)).lt(0.8f);
            int held = -1;
            for (int step = 0; step < 3; step++) {
                NDArray x = m.randomNormal(new Shape(2, 22, 16));
                x.setRequiresGradient(true);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(block.forward(ps, new NDList(x, mask), true).head().sum());
                }
                if (step == 0) {
                    held = ConstantCache.SHARED.size(m.getDevice());
                }
            }
            assertTrue(held > 0, "the block caches constants");
            assertEquals(held, ConstantCache.SHARED.size(m.getDevice()));
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
