package dev.condjl.stochastic;

import static dev.condjl.stochastic.TestArrays.assertClose;
import static dev.condjl.stochastic.TestArrays.rowBitsEqual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;
import java.util.function.BinaryOperator;
import java.util.function.Function;

/** Batch-subset stochastic depth, spec dropout-stochastic.md §1.1 and §6.1. */
class StochasticDepthTest extends ManagedTest {

    /** A per-sample branch with nonzero output everywhere. */
    private static final Function<NDArray, NDArray> BRANCH = v -> v.tanh().add(1.5f);

    @Test
    void subsetSizeMatchesPythonDoubleTruncation() throws Exception {
        // every (b, p) with b <= 256, p in 0.01..0.99 where double truncation differs from exact
        // arithmetic, plus the worked table; made by gen_fixtures.py with DINOv2's formula
        JsonArray cases = TestArrays.readJson("subset_sizes.json").getAsJsonArray("cases");
        assertEquals(159, cases.size());
        for (JsonElement c : cases) {
            JsonArray bpk = c.getAsJsonArray();
            long b = bpk.get(0).getAsLong();
            double p = bpk.get(1).getAsDouble();
            assertEquals(
                    bpk.get(2).getAsInt(), StochasticDepth.subsetSize(b, p), "b=" + b + " p=" + p);
        }
    }

    @Test
    void subsetSizeAndScaleOfTheIssueCases() {
        assertEquals(62, StochasticDepth.subsetSize(90, 0.3));
        assertEquals(90.0 / 62, StochasticDepth.subsetScale(90, 62));
        assertEquals(1, StochasticDepth.subsetSize(1, 0.5));
        assertEquals(1.0, StochasticDepth.subsetScale(1, 1));
        assertEquals(1, StochasticDepth.subsetSize(8, 1.0));
        assertEquals(8.0, StochasticDepth.subsetScale(8, 1));
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> StochasticDepth.subsetSize(8, -0.1));
        assertThrows(IllegalArgumentException.class, () -> StochasticDepth.subsetSize(8, 1.5));
        assertThrows(
                IllegalArgumentException.class, () -> StochasticDepth.subsetSize(8, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> StochasticDepth.subsetSize(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> StochasticDepth.subsetScale(8, 9));
        NDArray x = manager.randomNormal(new Shape(4, 3));
        NDArray idx = manager.create(new long[] {0, 2});
        IllegalArgumentException shape =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> StochasticDepth.dropAddResidual(x, idx, v -> v.get(":, 0")));
        assertTrue(shape.getMessage().contains("(2, 3)"), shape.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () ->
                        StochasticDepth.dropAddResidual(
                                x, idx, v -> v.toType(DataType.FLOAT64, false)));
        assertThrows(
                IllegalArgumentException.class,
                () -> StochasticDepth.dropAddResidual(manager.create(1f), BRANCH, 0.5, true));
    }

    @Test
    void evalAndZeroRateGiveThePlainResidual() {
        NDArray x = manager.randomNormal(new Shape(6, 3, 4));
        NDArray full = x.add(BRANCH.apply(x));
        assertTrue(full.contentEquals(StochasticDepth.dropAddResidual(x, BRANCH, 0.4, false)));
        assertTrue(full.contentEquals(StochasticDepth.dropAddResidual(x, BRANCH, 0.0, true)));
    }

    @Test
    void injectedSubsetMatchesTheIndexAddFormula() {
        long b = 8;
        NDArray x = manager.randomNormal(new Shape(b, 3, 4));
        x.set(new NDIndex(":, 0, 0"), -0.0f); // -0.0 must survive untouched
        long[] picked = {5, 1, 6};
        NDArray out = StochasticDepth.dropAddResidual(x, manager.create(picked), BRANCH);
        Set<Long> selected = new HashSet<>();
        for (long i : picked) {
            selected.add(i);
            NDArray xi = x.get(i);
            assertClose(xi.add(BRANCH.apply(xi).mul(8.0 / 3)), out.get(i), 1e-6);
        }
        for (long i = 0; i < b; i++) {
            if (!selected.contains(i)) {
                assertTrue(rowBitsEqual(x, out, i), "row " + i + " must be bit-identical");
            }
        }
    }

    @Test
    void rowsAreAdvancedIndexingWithAScatterAddGradient() {
        NDArray x = manager.randomNormal(new Shape(6, 3, 4));
        x.setRequiresGradient(true);
        NDArray idx = manager.create(new long[] {4, 0, 5});
        NDArray weights = manager.randomNormal(new Shape(3, 3, 4));
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray rows = StochasticDepth.rows(x, idx);
            assertEquals(new Shape(3, 3, 4), rows.getShape());
            NDArray indexed = x.get(idx);
            for (long j = 0; j < 3; j++) {
                assertTrue(rowBitsEqual(indexed, rows, j), "row " + j + " must equal x[idx] bit for bit");
            }
            collector.backward(rows.mul(weights).sum());
        }
        // d/dx of sum(w * x[idx]): w's row j lands on row idx[j], the rows not picked get 0
        NDArray grad = x.getGradient();
        long[] picked = idx.toLongArray();
        for (long i = 0; i < 6; i++) {
            NDArray expected = manager.zeros(new Shape(3, 4));
            for (int j = 0; j < picked.length; j++) {
                expected = picked[j] == i ? weights.get(j) : expected;
            }
            assertClose(expected, grad.get(i), 0);
        }
        // a boolean mask's rows, as the stochastic residual selects them
        NDArray mask = manager.create(new boolean[] {true, false, true, true, false, false}).reshape(6, 1)
                .repeat(1, 2);
        NDArray maskRows = StochasticDepth.rows(mask, idx);
        assertEquals(DataType.BOOLEAN, maskRows.getDataType());
        assertTrue(maskRows.contentEquals(mask.get(idx)));
    }

    @Test
    void randomSubsetChangesExactlyKRowsAndLeavesTheOthersBitIdentical() {
        NDArray x = manager.randomNormal(new Shape(90, 2, 3));
        x.set(new NDIndex(":, 1, 2"), -0.0f);
        NDArray out = StochasticDepth.dropAddResidual(x, BRANCH, 0.3, true);
        int changed = 0;
        for (long i = 0; i < 90; i++) {
            if (!rowBitsEqual(x, out, i)) {
                changed++;
            }
        }
        assertEquals(62, changed);
    }

    @Test
    void seededRunsAreReproducible() {
        NDArray x = manager.randomNormal(new Shape(90, 4));
        Engine.getInstance().setRandomSeed(7);
        NDArray a = StochasticDepth.dropAddResidual(x, BRANCH, 0.5, true);
        Engine.getInstance().setRandomSeed(7);
        NDArray b = StochasticDepth.dropAddResidual(x, BRANCH, 0.5, true);
        Engine.getInstance().setRandomSeed(8);
        NDArray c = StochasticDepth.dropAddResidual(x, BRANCH, 0.5, true);
        assertTrue(a.contentEquals(b));
        assertFalse(a.contentEquals(c));
    }

    @Test
    void meanOverSeedsIsTheFullResidual() {
        // b=8, p=0.4: k=4, alpha=2. Per entry the draw has std |f| (about 1.5 here), so over 4000
        // seeds the mean's error is about |f|/63 ~ 0.024 (mean abs ~ 0.019). The tolerance 0.04
        // still rejects the biased scale 1/(1-p): its error is f/6 ~ 0.25.
        NDArray x = manager.randomNormal(new Shape(8, 2, 3));
        NDArray mean =
                TestArrays.meanOverSeeds(
                        manager,
                        x.getShape(),
                        4000,
                        () -> StochasticDepth.dropAddResidual(x, BRANCH, 0.4, true));
        float meanAbsError = mean.sub(x.add(BRANCH.apply(x))).abs().mean().getFloat();
        assertTrue(meanAbsError < 0.04, "mean |error| " + meanAbsError);
    }

    @Test
    void gradientsMatchADenseComputationWithTheSameSubset() {
        NDArray x0 = manager.randomNormal(new Shape(6, 3, 4));
        NDArray w0 = manager.randomNormal(new Shape(4, 4));
        NDArray upstream = manager.randomNormal(new Shape(6, 3, 4));
        long[] picked = {4, 0, 2};
        // dense: every row runs the branch, the selected ones weighted by b/k = 2, the others by 0
        float[] weights = {2, 0, 2, 0, 2, 0};
        NDArray[] sparse =
                gradients(
                        x0,
                        w0,
                        upstream,
                        (x, w) ->
                                StochasticDepth.dropAddResidual(
                                        x, manager.create(picked), v -> v.matMul(w).tanh()));
        NDArray[] dense =
                gradients(
                        x0,
                        w0,
                        upstream,
                        (x, w) ->
                                x.add(
                                        x.matMul(w)
                                                .tanh()
                                                .mul(manager.create(weights).reshape(6, 1, 1))));
        for (int i = 0; i < 3; i++) {
            assertClose(dense[i], sparse[i], 1e-5);
        }
    }

    /** Returns {output, dL/dx, dL/dw} for L = sum(upstream * f(x, w)) on fresh leaves. */
    private static NDArray[] gradients(
            NDArray x0, NDArray w0, NDArray upstream, BinaryOperator<NDArray> f) {
        NDArray x = x0.duplicate();
        NDArray w = w0.duplicate();
        x.setRequiresGradient(true);
        w.setRequiresGradient(true);
        NDArray out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            out = f.apply(x, w);
            gc.backward(out.mul(upstream).sum());
        }
        return new NDArray[] {out.stopGradient(), x.getGradient(), w.getGradient()};
    }
}
