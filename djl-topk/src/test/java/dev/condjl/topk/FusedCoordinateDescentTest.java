package dev.condjl.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import dev.condjl.cuda.CondjlOps;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link Backend#FUSED}: forward equal to {@link Backend#UNROLLED}, gradient = the implicit gradient. */
class FusedCoordinateDescentTest {

    private static final Logger LOG = LogManager.getLogger(FusedCoordinateDescentTest.class);

    private NDManager manager;

    @BeforeEach
    void setUp() {
        assertTrue(CondjlOps.isAvailable(), CondjlOps.unavailableReason());
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(11);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static CoordinateDescent.Options router(int iters, Backend backend) {
        return CoordinateDescent.Options.builder().setIters(iters).optEps(0.03).optEpsInit(4.0).optEpsDecay(0.7)
                .optBackend(backend).build();
    }

    private static CoordinateDescent.Options converging(Backend backend) {
        return CoordinateDescent.Options.builder().setIters(300).optEps(0.5).optBackend(backend).build();
    }

    @Test
    void forwardMatchesUnrolledWithMaskAndPerRowK() {
        // Unit-scale scores: the forward's rounding differences are about ulp(a)/e_final, so they grow with |s|.
        NDArray s = manager.randomNormal(new Shape(3, 2, 300));
        NDArray mask = manager.randomUniform(0, 1, new Shape(3, 1, 300)).lt(0.75f);
        NDArray k = manager.create(new float[] {5, 40, 1}).reshape(3, 1);
        for (int iters : new int[] {1, 20, 50}) {
            NDArray fused = CoordinateDescent.solve(s, k, mask, router(iters, Backend.FUSED));
            NDArray unrolled = CoordinateDescent.solve(s, k, mask, router(iters, Backend.UNROLLED));
            assertClose(unrolled, fused, 1e-5, iters + " iterations, per-row k, mask");
            assertClose(CoordinateDescent.solve(s, 17, null, router(iters, Backend.UNROLLED)),
                    CoordinateDescent.solve(s, 17, null, router(iters, Backend.FUSED)), 1e-5, iters + " iterations");
        }
    }

    /**
     * Tiny scores (spec colt5.md §2.2 step 5: {@code y = exp((s + a + b)/e)}) underflow through the subnormals to 0
     * as the engine's exp does, on the CPU and on a GPU. Exactness needs the same argument: with one-element rows,
     * k = 1 and one iteration, {@code a = e·(ln 1 − lse(0)) = 0} exactly in both backends, so both exponentiate
     * RN(s / e). On a GPU the fused kernel calls the same CUDA expf as torch.exp: equal to the last bit. On the CPU
     * the kernel's exp is correctly rounded, while the engine's vectorised exp is only within 1 ulp (about 1% of the
     * normal results here are 1 ulp off); subnormal results are spaced 2^−149 apart, so that error does not change
     * their rounding (none of the ~1800 here), and those and the zeros agree to the last bit.
     */
    @Test
    void tinyScoresAreTheEnginesExpOfTheSameArgument() {
        int rows = 3000;
        float[] values = new float[rows];
        for (int i = 0; i < rows; i++) {
            values[i] = -2.5f - 0.7f * i / rows;  // s / e from -83 through the subnormals (below -87.3) to 0 (-104)
        }
        NDArray s = manager.create(values).reshape(rows, 1);
        CoordinateDescent.Options.Builder once = CoordinateDescent.Options.builder().setIters(1).optEps(0.03);
        float[] fused = CoordinateDescent.solve(s, 1, null, once.optBackend(Backend.FUSED).build()).toFloatArray();
        float[] unrolled =
                CoordinateDescent.solve(s, 1, null, once.optBackend(Backend.UNROLLED).build()).toFloatArray();
        float[] exp = s.div(manager.full(new Shape(), 0.03f)).exp().toFloatArray();
        boolean gpu = s.getDevice().isGpu();
        int subnormal = 0;
        for (int i = 0; i < rows; i++) {
            int row = i;
            float correctlyRounded = (float) Math.exp(values[i] / 0.03f);
            float expected = gpu || exp[i] < Float.MIN_NORMAL ? exp[i] : correctlyRounded;
            assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(fused[i]), () -> "s = " + values[row]
                    + ": engine exp " + exp[row] + ", correctly rounded " + correctlyRounded + ", fused " + fused[row]);
            assertTrue(Math.abs(fused[i] - exp[i]) <= Math.ulp(exp[i]), "within 1 ulp of the engine's exp");
            assertEquals(Float.floatToIntBits(exp[i]), Float.floatToIntBits(unrolled[i]), "unrolled");
            subnormal += fused[i] > 0 && fused[i] < Float.MIN_NORMAL ? 1 : 0;
        }
        assertTrue(subnormal > 1500 && fused[rows - 1] == 0, subnormal + " subnormal scores, last " + fused[rows - 1]);
    }

    /**
     * A row whose K-th and (K+1)-th scores are distinct subnormals routes the same tokens with either backend. One
     * iteration at constant ε gives the closed form {@code y = min(1, exp((s + e·ln(k/n))/e))}: the tokens below
     * the top one or two get scores around exp(−95) ≈ 5e−42 that differ by a few percent, far more than the backends'
     * rounding. A clamped exp made all six a tie, and the top-k then picked by position.
     */
    @Test
    void subnormalCutRoutesLikeUnrolled() {
        NDArray s = manager.create(new float[] {
            -2.8206f, 1.0f, -2.83f, -3.4f, -2.8212f, -0.5f, -2.82f, -3.2f,
            -2.9f, -2.8f, -2.84f, 2.0f, -2.95f, -2.815f, -3.0f, -2.86f}).reshape(2, 8);
        CoordinateDescent.Options.Builder once = CoordinateDescent.Options.builder().setIters(1).optEps(0.03);
        NDArray unrolled = CoordinateDescent.solve(s, 3, null, once.optBackend(Backend.UNROLLED).build());
        NDArray fused = CoordinateDescent.solve(s, 3, null, once.optBackend(Backend.FUSED).build());
        float[] u = unrolled.toFloatArray();
        for (int[] cut : new int[][] {{6, 0}, {13, 10}}) {  // the 3rd and 4th of each row: distinct subnormals
            assertTrue(u[cut[0]] > u[cut[1]] && u[cut[0]] < Float.MIN_NORMAL && u[cut[1]] > 0,
                    u[cut[0]] + " vs " + u[cut[1]]);
        }
        for (TieBreak tieBreak : TieBreak.values()) {
            NDArray expected = TopK.select(unrolled, s, 3, tieBreak).get(1);
            assertArrayEquals(new long[] {1, 5, 6, 3, 1, 5}, expected.toLongArray(), tieBreak + " unrolled");
            assertArrayEquals(expected.toLongArray(), TopK.select(fused, s, 3, tieBreak).get(1).toLongArray(),
                    tieBreak + " fused");
        }
    }

    /**
     * Fused vs unrolled scores below 1e−30 on rows with the router's schedule and wide scores, where the two
     * backends' {@code a} may differ by a few ulps (differently ordered sums of exponentials): then every unsaturated
     * score of the row moves by the same factor {@code exp(Δa/e)}, tiny ones included, and nothing more. So the
     * tiny scores' relative difference is bounded by the largest relative difference of the row's normal unsaturated
     * scores (plus one rounding of the argument), with one subnormal unit of absolute slack; and they keep the order
     * of the raw scores. A clamp or a flush to zero breaks both.
     */
    @Test
    void tinyScoresFollowTheUnrolledOnesWithinTheRowsRounding() {
        NDArray s = manager.randomNormal(new Shape(8, 512)).mul(6);
        float[] raw = s.toFloatArray();
        float[] f = CoordinateDescent.solve(s, 36, null, router(20, Backend.FUSED)).toFloatArray();
        float[] u = CoordinateDescent.solve(s, 36, null, router(20, Backend.UNROLLED)).toFloatArray();
        int n = 512;
        int tiny = 0;
        int subnormal = 0;
        for (int row = 0; row < 8; row++) {
            double rowRel = 0;
            for (int i = row * n; i < (row + 1) * n; i++) {
                if (u[i] > 1e-30 && u[i] < 0.5) {
                    rowRel = Math.max(rowRel, Math.abs(f[i] / (double) u[i] - 1));
                }
            }
            Integer[] order = new Integer[n];
            for (int j = 0; j < n; j++) {
                order[j] = row * n + j;
            }
            java.util.Arrays.sort(order, (p, q) -> Float.compare(raw[p], raw[q]));
            for (int j = 0; j < n; j++) {
                int i = order[j];
                if (f[i] >= 1e-30 || u[i] >= 1e-30) {
                    continue;
                }
                tiny++;
                subnormal += u[i] > 0 && u[i] < Float.MIN_NORMAL ? 1 : 0;
                double bound = u[i] * (2 * rowRel + 1e-5) + Float.MIN_VALUE;
                assertTrue(Math.abs(f[i] - (double) u[i]) <= bound,
                        "score " + i + ": fused " + f[i] + ", unrolled " + u[i] + ", row's relative gap " + rowRel);
                assertTrue(j == 0 || f[order[j - 1]] <= f[i], "fused tiny scores keep the order of the raw scores");
            }
        }
        assertTrue(tiny > 500 && subnormal > 50, tiny + " scores below 1e-30, " + subnormal + " subnormal");
    }

    /**
     * A row whose only unsaturated score is subnormal: Σq ≈ 1e−40, where the surrogate's {@code k/Σq} would
     * overflow to inf and turn the output and the gradient into NaN. One iteration at ε = 0.03, k = 1, n = 2:
     * {@code y = min(1, exp((s − 0.03·ln 2)/0.03))} = (1, ~1e−41); the second row is ordinary.
     */
    @Test
    void subnormalWeightsKeepTheSurrogateFinite() {
        NDArray s = manager.create(new float[] {1.0f, -2.8f, 0.3f, -0.2f}).reshape(2, 2);
        NDArray g = manager.create(new float[] {0.5f, -1.5f, 1.0f, 2.0f}).reshape(2, 2);
        CoordinateDescent.Options once =
                CoordinateDescent.Options.builder().setIters(1).optEps(0.03).optBackend(Backend.FUSED).build();
        NDArray[] yds = outputAndGradient(s, g, 1, once);
        float[] values = yds[0].toFloatArray();
        assertEquals(1f, values[0]);
        assertTrue(values[1] > 0 && values[1] < Float.MIN_NORMAL, "subnormal " + values[1]);
        assertArrayEquals(CoordinateDescent.solve(s, 1, null, once).toFloatArray(), values, "forward unchanged");
        NDArray expected = CondjlOps.coorDescentBackward(yds[0], g, 0.03f);
        assertFalse(yds[1].isNaN().any().getBoolean() || yds[1].isInfinite().any().getBoolean(),
                "finite gradient " + java.util.Arrays.toString(yds[1].toFloatArray()));
        assertClose(expected, yds[1], 1e-5 * maxAbs(expected), "surrogate gradient = native backward");
    }

    @Test
    void autogradYieldsTheImplicitGradient() {
        NDArray s = manager.randomNormal(new Shape(4, 257));
        NDArray g = manager.randomNormal(new Shape(4, 257));
        NDArray[] yds = outputAndGradient(s, g, 30, router(20, Backend.FUSED));
        NDArray expected = CondjlOps.coorDescentBackward(yds[0], g, 0.03f);
        assertClose(expected, yds[1], 1e-5 * maxAbs(expected), "surrogate gradient = native backward");
        assertArrayEquals(CoordinateDescent.solve(s, 30, null, router(20, Backend.FUSED)).toFloatArray(),
                yds[0].toFloatArray(), "the surrogate leaves the forward value unchanged");
    }

    /**
     * A scalar {@code k} is a constant, so its surrogate has no {@code k} term; the same {@code k} given per row
     * keeps it. Both give the same output and {@code ds}, and the per-row one also {@code dk = Σ(g·w)/Σw}
     * ({@code w = y} where {@code y < 1}).
     */
    @Test
    void scalarKDropsOnlyTheGradientOfK() {
        NDArray s = manager.randomNormal(new Shape(4, 257));
        NDArray g = manager.randomNormal(new Shape(4, 257));
        CoordinateDescent.Options options = router(20, Backend.FUSED);
        NDArray[] yds = outputAndGradient(s, g, 30, options);
        NDArray[] perRow = gradients(s, g, manager.full(new Shape(4), 30f), options);
        assertClose(yds[1], perRow[0], 1e-6 * maxAbs(yds[1]), "ds of a scalar k vs the same k per row");
        assertArrayEquals(CoordinateDescent.solve(s, manager.full(new Shape(4), 30f), null, options).toFloatArray(),
                yds[0].toFloatArray(), "the same output");
        NDArray w = yds[0].mul(yds[0].lt(1).toType(DataType.FLOAT32, false));
        NDArray dk = g.mul(w).sum(new int[] {-1}).div(w.sum(new int[] {-1}));
        assertTrue(maxAbs(dk) > 0.01, "a non-trivial dk " + maxAbs(dk));
        assertClose(dk, perRow[1], 1e-5 * maxAbs(dk), "dk = Σ(g·w)/Σw");
    }

    @Test
    void convergedGradientsOfScoresAndKMatchUnrolled() {
        NDArray s = manager.randomNormal(new Shape(3, 64));
        NDArray g = manager.randomNormal(new Shape(3, 64));
        NDArray[] fused = gradients(s, g, manager.create(new float[] {4, 8, 20}), converging(Backend.FUSED));
        NDArray[] unrolled = gradients(s, g, manager.create(new float[] {4, 8, 20}), converging(Backend.UNROLLED));
        assertTrue(cosine(fused[0], unrolled[0]) > 0.9999, "ds cosine " + cosine(fused[0], unrolled[0]));
        assertClose(unrolled[0], fused[0], 1e-3 * maxAbs(unrolled[0]), "ds at convergence");
        assertClose(unrolled[1], fused[1], 1e-3 * maxAbs(unrolled[1]), "dk at convergence");
    }

    /** The documented gap (FusedCoordinateDescent's class comment) between implicit and unrolled gradients. */
    @Test
    void measuresTheGradientGapToUnrolled() {
        // The implicit gradient is that of the converged solution; the unrolled one approaches it as the iterations
        // converge, at a pace that depends on the scores (50 iterations gave cosines from 0.984 to 0.9993 on
        // different draws). So the test asserts the narrowing and the limit, on host-drawn data that every device
        // shares.
        NDArray s = Fixtures.normal(manager, 5, 4, 2048);
        NDArray g = Fixtures.normal(manager, 6, 4, 2048);
        NDArray k = manager.create(new float[] {256, 256, 256, 256});
        double previous = -1;
        for (int iters : new int[] {20, 50, 400}) {
            NDArray fused = gradients(s, g, k, router(iters, Backend.FUSED))[0];
            NDArray unrolled = gradients(s, g, k, router(iters, Backend.UNROLLED))[0];
            double cos = cosine(fused, unrolled);
            double diff = fused.sub(unrolled).abs().max().getFloat();
            LOG.info("{} iterations: implicit vs unrolled gradient max |diff| {} (unrolled max |grad| {}), cosine {}",
                    iters, diff, maxAbs(unrolled), cos);
            assertTrue(cos > previous, iters + " iterations: cosine " + cos + " must exceed " + previous);
            assertTrue(cos > 0.95, iters + " iterations: cosine " + cos);
            previous = cos;
        }
        assertTrue(previous > 0.999, "converged: cosine " + previous);
    }

    @Test
    void autoPicksFusedWhereItRuns() {
        NDArray s = manager.randomNormal(new Shape(2, 100));
        NDArray g = manager.randomNormal(new Shape(2, 100));
        NDArray k = manager.create(new float[] {10, 10});
        NDArray auto = gradients(s, g, k, router(20, Backend.AUTO))[0];
        assertArrayEquals(gradients(s, g, k, router(20, Backend.FUSED))[0].toFloatArray(), auto.toFloatArray());
        assertFalse(auto.contentEquals(gradients(s, g, k, router(20, Backend.UNROLLED))[0]), "not the unrolled one");

        NDArray s64 = s.toType(DataType.FLOAT64, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CoordinateDescent.solve(s64, 10, null, router(20, Backend.FUSED)));
        assertTrue(e.getMessage().contains("float32 or float16 scores, got float64"), e.getMessage());
        assertClose(CoordinateDescent.solve(s64, 10, null, router(20, Backend.UNROLLED)),
                CoordinateDescent.solve(s64, 10, null, router(20, Backend.AUTO)), 0, "float64 AUTO = UNROLLED");
    }

    @Test
    void fullyMaskedRowHasZeroOutputAndGradient() {
        NDArray s = manager.randomNormal(new Shape(3, 16));
        NDArray mask = manager.create(new boolean[] {true, false, true}).reshape(3, 1).broadcast(3, 16);
        s.set(new ai.djl.ndarray.index.NDIndex("1, 2"), Float.NaN);  // masked: must not reach the gradient
        NDArray[] grads = gradientsMasked(s, mask);
        assertArrayEquals(new float[16], grads[0].get(1).toFloatArray());
        assertArrayEquals(new float[16], grads[1].get(1).toFloatArray());
        assertFalse(grads[1].isNaN().any().getBoolean(), "no NaN gradient");
    }

    /** Returns {output, d(Σ y)/ds} of a masked solve with k = 4. */
    private static NDArray[] gradientsMasked(NDArray s, NDArray mask) {
        NDArray x = s.duplicate();
        x.setRequiresGradient(true);
        NDArray y;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            y = CoordinateDescent.solve(x, 4, mask, router(20, Backend.FUSED));
            collector.backward(y.sum());
        }
        return new NDArray[] {y, x.getGradient()};
    }

    /** Returns {y (without gradient), d(Σ g·y)/ds} for a scalar k. */
    private static NDArray[] outputAndGradient(NDArray s, NDArray g, double k, CoordinateDescent.Options options) {
        NDArray x = s.duplicate();
        x.setRequiresGradient(true);
        NDArray y;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            y = CoordinateDescent.solve(x, k, null, options);
            collector.backward(y.mul(g).sum());
        }
        return new NDArray[] {y.stopGradient(), x.getGradient().duplicate()};
    }

    /** Returns {d(Σ g·y)/ds, d(Σ g·y)/dk} for a per-row k. */
    private static NDArray[] gradients(NDArray s, NDArray g, NDArray k, CoordinateDescent.Options options) {
        NDArray x = s.duplicate();
        NDArray kk = k.duplicate();
        x.setRequiresGradient(true);
        kk.setRequiresGradient(true);
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            collector.backward(CoordinateDescent.solve(x, kk, null, options).mul(g).sum());
        }
        // Copies: a later collector may reset the gradients it finds.
        return new NDArray[] {x.getGradient().duplicate(), kk.getGradient().duplicate()};
    }

    private static double cosine(NDArray a, NDArray b) {
        double dot = a.mul(b).sum().getFloat();
        double norms = a.mul(a).sum().getFloat() * (double) b.mul(b).sum().getFloat();
        assertTrue(norms > 0, "non-zero gradients");
        return dot / Math.sqrt(norms);
    }

    private static double maxAbs(NDArray a) {
        return a.abs().max().toType(DataType.FLOAT64, false).getDouble();
    }

    private static void assertClose(NDArray expected, NDArray actual, double tol, String what) {
        double diff = expected.toType(DataType.FLOAT64, false).sub(actual.toType(DataType.FLOAT64, false)).abs()
                .max().getDouble();
        assertTrue(diff <= tol, what + ": max |diff| " + diff + " > " + tol);
    }
}
