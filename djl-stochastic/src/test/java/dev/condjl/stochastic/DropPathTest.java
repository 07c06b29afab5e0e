package dev.condjl.stochastic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import org.junit.jupiter.api.Test;

/** timm DropPath, spec dropout-stochastic.md §2.1 and §6.2 (timm tests/test_layers_drop.py). */
class DropPathTest extends ManagedTest {

    @Test
    void zeroRateAndEvalAreTheIdentity() {
        NDArray x = manager.ones(new Shape(4, 8, 16, 16));
        assertSame(x, DropPath.dropPath(x, 0, true, true));
        assertSame(x, DropPath.dropPath(x, 0.5, false, true));
        DropPath block = DropPath.builder().optDropProb(0.5).build();
        NDList out = block.forward(new ParameterStore(manager, false), new NDList(x), false);
        assertSame(x, out.singletonOrThrow());
    }

    @Test
    void keptSamplesAreScaledByOneOverKeepAndConstantWithinASample() {
        Engine.getInstance().setRandomSeed(42);
        NDArray out = DropPath.dropPath(manager.ones(new Shape(100, 3, 5)), 0.2, true, true);
        int kept = countKept(out, 1.25f);
        assertTrue(kept > 60 && kept < 95, "kept " + kept + " of 100 at q=0.8");
    }

    @Test
    void withoutScaleByKeepKeptSamplesStayOne() {
        Engine.getInstance().setRandomSeed(42);
        NDArray out = DropPath.dropPath(manager.ones(new Shape(32, 3, 5)), 0.5, true, false);
        int kept = countKept(out, 1f);
        assertTrue(kept > 0 && kept < 32, "some but not all samples kept: " + kept);
    }

    /** Asserts every sample is all 0 or all {@code keptValue}; returns the number kept. */
    private static int countKept(NDArray out, float keptValue) {
        int kept = 0;
        for (long i = 0; i < out.getShape().get(0); i++) {
            NDArray row = out.get(i);
            if (row.eq(0f).all().getBoolean()) {
                continue;
            }
            assertTrue(
                    row.sub(keptValue).abs().max().getFloat() <= 1e-5, "sample " + i + ": " + row);
            kept++;
        }
        return kept;
    }

    @Test
    void rateOneGivesZerosWithoutNaN() {
        NDArray out = DropPath.dropPath(manager.randomNormal(new Shape(6, 4)), 1.0, true, true);
        assertEquals(0f, out.abs().sum().getFloat());
        assertTrue(out.isNaN().none().getBoolean());
    }

    @Test
    void meanOverSeedsIsTheInput() {
        // q = 0.6: per entry std |x| sqrt(p/q) ~ 0.65 |x|; over 4000 seeds the mean's error is
        // about 0.01 |x|. Without the 1/q scale the mean would be 0.6 x (error 0.4 |x|).
        NDArray x = manager.randomNormal(new Shape(8, 2, 3));
        NDArray mean =
                TestArrays.meanOverSeeds(
                        manager, x.getShape(), 4000, () -> DropPath.dropPath(x, 0.4, true, true));
        float meanAbsError = mean.sub(x).abs().mean().getFloat();
        assertTrue(meanAbsError < 0.03, "mean |error| " + meanAbsError);
    }

    @Test
    void blockDescribesItselfAndValidates() {
        assertTrue(DropPath.builder().optDropProb(0.123).build().toString().contains("0.123"));
        assertThrows(
                IllegalArgumentException.class, () -> DropPath.builder().optDropProb(1.5).build());
        assertThrows(
                IllegalArgumentException.class,
                () -> DropPath.dropPath(manager.ones(new Shape(2)), -1, true, true));
    }
}
