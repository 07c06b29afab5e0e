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

    @Test
    void autogradYieldsTheImplicitGradient() {
        NDArray s = manager.randomNormal(new Shape(4, 257));
        NDArray g = manager.randomNormal(new Shape(4, 257));
        s.setRequiresGradient(true);
        NDArray y;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            y = CoordinateDescent.solve(s, 30, null, router(20, Backend.FUSED));
            collector.backward(y.mul(g).sum());
        }
        NDArray expected = CondjlOps.coorDescentBackward(y.stopGradient(), g, 0.03f);
        assertClose(expected, s.getGradient(), 1e-5 * maxAbs(expected), "surrogate gradient = native backward");
        assertArrayEquals(CoordinateDescent.solve(s.stopGradient(), 30, null, router(20, Backend.FUSED))
                .toFloatArray(), y.toFloatArray(), "the surrogate leaves the forward value unchanged");
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
