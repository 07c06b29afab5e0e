package dev.condjl.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Spec colt5.md §2.2 properties of {@link CoordinateDescent} and its argument validation. */
class CoordinateDescentTest {

    private static final CoordinateDescent.Options ROUTER = unrolled()
            .setIters(20).optEps(0.03).optEpsInit(4.0).optEpsDecay(0.7).build();

    private NDManager manager;

    /** These tests prove the reference algorithm, so they pin it; {@code Backend.AUTO} may pick the fused one. */
    static CoordinateDescent.Options.Builder unrolled() {
        return CoordinateDescent.Options.builder().optBackend(Backend.UNROLLED);
    }

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(7);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void outputsLieInUnitIntervalAndMaskedEntriesAreExactlyZero() {
        NDArray s = manager.randomNormal(new Shape(8, 64)).mul(3);
        NDArray mask = manager.randomUniform(0, 1, new Shape(8, 64)).lt(0.7);
        float[] y = CoordinateDescent.solve(s, 10, mask, ROUTER).toFloatArray();
        boolean[] valid = mask.toBooleanArray();
        int saturated = 0;
        for (int i = 0; i < y.length; i++) {
            assertTrue(y[i] >= 0 && y[i] <= 1, "entry " + i + " = " + y[i]);
            if (!valid[i]) {
                assertEquals(0f, y[i], "masked entry " + i);
            }
            saturated += y[i] == 1f ? 1 : 0;
        }
        assertTrue(saturated > 0, "router schedule saturates some entries at exactly 1.0");
    }

    @Test
    void rowsSumToKAtConvergence() {
        CoordinateDescent.Options converging = unrolled().setIters(30).optEps(1).build();
        NDArray s = manager.randomNormal(new Shape(4, 128));
        assertRowSums(CoordinateDescent.solve(s, 16, null, converging), new float[] {16, 16, 16, 16});
        float[] k = {3, 10.5f, 20, 1};
        NDArray mask = manager.randomUniform(0, 1, new Shape(4, 128)).lt(0.5);
        assertRowSums(CoordinateDescent.solve(s, manager.create(k), mask, converging), k);
    }

    private static void assertRowSums(NDArray y, float[] k) {
        float[] sums = y.sum(new int[] {-1}).toFloatArray();
        for (int row = 0; row < k.length; row++) {
            assertEquals(k[row], sums[row], 1e-3, "row " + row + " sum");
        }
    }

    @Test
    void isDeterministic() {
        NDArray s = manager.randomNormal(new Shape(3, 2, 50));
        NDArray mask = manager.randomUniform(0, 1, new Shape(3, 1, 50)).lt(0.8);
        float[] first = CoordinateDescent.solve(s, 7, mask, ROUTER).toFloatArray();
        assertArrayEquals(first, CoordinateDescent.solve(s, 7, mask, ROUTER).toFloatArray());
    }

    @Test
    void runsInTheInputDtype() {
        NDArray s = manager.randomNormal(new Shape(2, 16));
        NDArray mask = s.gt(-1);
        NDArray reference = CoordinateDescent.solve(s, 4, mask, ROUTER);
        for (DataType type : new DataType[] {DataType.FLOAT64, DataType.FLOAT16}) {
            NDArray y = CoordinateDescent.solve(s.toType(type, false), 4, mask, ROUTER);
            assertEquals(type, y.getDataType());
            double tolerance = type == DataType.FLOAT64 ? 1e-5 : 2e-2;
            assertTrue(y.toType(DataType.FLOAT32, false).sub(reference).abs().max().getFloat() < tolerance, type
                    + " agrees with float32");
            assertTrue(y.toType(DataType.FLOAT32, false).mul(mask.logicalNot()).eq(0).all().getBoolean(), type
                    + " masked entries are 0");
        }
    }

    @Test
    void oneIterationHasTheClosedForm() {
        // z ≡ 0 in the first iteration, so a = e·(ln k − ln n) and y = min(1, exp((s + a) / e)).
        NDArray s = manager.randomNormal(new Shape(2, 10)).mul(0.05);
        CoordinateDescent.Options one = unrolled().setIters(1).optEps(0.5).build();
        float[] y = CoordinateDescent.solve(s, 3, null, one).toFloatArray();
        float[] raw = s.toFloatArray();
        double a = 0.5 * (Math.log(3) - Math.log(10));
        for (int i = 0; i < y.length; i++) {
            assertEquals(Math.min(1, Math.exp((raw[i] + a) / 0.5)), y[i], 1e-6, "entry " + i);
        }
    }

    @Test
    void fullyMaskedRowGivesZerosAndZeroGradient() {
        NDArray s = Fixtures.normal(manager, 3, 3, 16);
        NDArray mask = manager.create(new boolean[] {true, false, true}).reshape(3, 1).broadcast(3, 16);
        s.setRequiresGradient(true);
        NDArray y;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            // eps_init 4 makes the masked row's intermediates overflow to ±inf and NaN (spec §2.2).
            y = CoordinateDescent.solve(s, 4, mask, ROUTER);
            collector.backward(y.sum());
        }
        assertArrayEquals(new float[16], y.get(1).toFloatArray());
        assertArrayEquals(new float[16], s.getGradient().get(1).toFloatArray());
        assertFalse(s.getGradient().isNaN().any().getBoolean(), "no NaN gradient anywhere");
        // rows are solved independently: the masked row's inf/NaN intermediates must not reach its neighbours
        NDArray valid = s.stopGradient().get(new NDIndex("0::2"));
        Fixtures.assertClose(CoordinateDescent.solve(valid, 4, null, ROUTER), y.get(new NDIndex("0::2")), 1e-6,
                "valid rows as if solved alone");
    }

    @Test
    void nanScoreSpoilsOnlyItsOwnRowUnlessMasked() {
        NDArray s = manager.randomNormal(new Shape(3, 8));
        s.set(new NDIndex("1, 2"), Float.NaN);
        NDArray y = CoordinateDescent.solve(s, 2, null, ROUTER);
        assertTrue(y.get(1).isNaN().all().getBoolean(), "the row with a NaN score is all NaN");
        assertFalse(y.get("0::2").isNaN().any().getBoolean(), "other rows are unaffected");

        NDArray mask = s.isNaN().logicalNot();
        NDArray masked = CoordinateDescent.solve(s, 2, mask, ROUTER);
        assertFalse(masked.isNaN().any().getBoolean(), "a masked NaN is ignored");
        assertEquals(0f, masked.getFloat(1, 2));
    }

    @Test
    void epsScheduleFollowsTheSpecListing() {
        double[] expected = {4, 2.8, 1.96, 1.372, 0.9604, 0.67228, 0.470596, 0.3294172, 0.23059204, 0.161414428,
            0.1129900996, 0.07909306972, 0.05536514880, 0.03875560416, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03};
        assertArrayEquals(expected, ROUTER.epsSchedule(), 1e-9);
        CoordinateDescent.Options vit = CoordinateDescent.Options.builder()
                .setIters(5).optEps(1).optEpsInit(4.0).optEpsDecay(0.7).build();
        assertArrayEquals(new double[] {4, 2.8, 1.96, 1.372, 1, 1}, vit.epsSchedule(), 1e-12);
        CoordinateDescent.Options below = CoordinateDescent.Options.builder().setIters(2).optEpsInit(0.01).build();
        assertArrayEquals(new double[] {0.1, 0.1, 0.1}, below.epsSchedule(), 0);
    }

    @Test
    void leavesNoTemporariesInTheCallersManager() {
        NDArray s = manager.randomNormal(new Shape(2, 12));
        NDArray k = manager.create(new float[] {2, 3});
        NDArray mask = manager.ones(new Shape(12), DataType.BOOLEAN);
        int before = manager.getManagedArrays().size();
        NDArray y = CoordinateDescent.solve(s, k, mask, ROUTER);
        assertEquals(before + 1, manager.getManagedArrays().size());
        assertEquals(manager, y.getManager());
        assertEquals(manager, mask.getManager());
    }

    /**
     * A scalar k's {@code ln k} is cached ({@link ConstantCache}); no result derived from it may land in the cache's
     * manager, with or without gradient, mask, on either backend and in every dtype.
     */
    @Test
    void nothingPilesUpNextToTheCachedLogK() {
        NDArray mask = manager.randomUniform(0, 1, new Shape(3, 16)).lt(0.8);
        for (Backend backend : new Backend[] {Backend.UNROLLED, Backend.AUTO}) {
            CoordinateDescent.Options options = unrolled().setIters(5).optBackend(backend).build();
            for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT16, DataType.FLOAT64}) {
                int held = -1;
                for (int i = 0; i < 3; i++) {
                    NDArray s = manager.randomNormal(new Shape(3, 16)).toType(type, false);
                    s.setRequiresGradient(true);
                    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                        collector.backward(CoordinateDescent.solve(s, 4, i == 1 ? null : mask, options).sum());
                    }
                    CoordinateDescent.solve(s.stopGradient(), 4, mask, options);
                    if (i == 0) {
                        held = ConstantCache.SHARED.size(manager.getDevice());
                    }
                }
                assertTrue(held > 0, "ln k is cached");
                assertEquals(held, ConstantCache.SHARED.size(manager.getDevice()), backend + " " + type);
            }
        }
    }

    @Test
    void rejectsBadArgumentsNamingThem() {
        NDArray s = manager.randomNormal(new Shape(2, 6));
        CoordinateDescent.Options options = unrolled().setIters(3).build();
        assertMessage("k (0.0)", () -> CoordinateDescent.solve(s, 0, null, options));
        assertMessage("k (-2.0)", () -> CoordinateDescent.solve(s, -2, null, options));
        assertMessage("k (NaN)", () -> CoordinateDescent.solve(s, Double.NaN, null, options));
        assertMessage("got min 0.0", () -> CoordinateDescent.solve(s, manager.create(new float[] {1, 0}), null,
                options));
        assertMessage("k shape (3)", () -> CoordinateDescent.solve(s, manager.create(new float[] {1, 2, 3}), null,
                options));
        assertMessage("iters (0)", () -> CoordinateDescent.Options.builder().build());
        assertMessage("eps (0.0)", () -> CoordinateDescent.Options.builder().setIters(1).optEps(0).build());
        assertMessage("eps (-0.1)", () -> CoordinateDescent.Options.builder().setIters(1).optEps(-0.1).build());
        assertMessage("epsInit (0.0)", () -> CoordinateDescent.Options.builder().setIters(1).optEpsInit(0.0).build());
        assertMessage("epsDecay (0.0)", () -> CoordinateDescent.Options.builder().setIters(1).optEpsDecay(0).build());
        assertMessage("mask shape (2, 5)",
                () -> CoordinateDescent.solve(s, 1, manager.ones(new Shape(2, 5), DataType.BOOLEAN), options));
        assertMessage("mask must be boolean", () -> CoordinateDescent.solve(s, 1, manager.ones(new Shape(6)), options));
        assertMessage("s must be float16, float32 or float64, got int32",
                () -> CoordinateDescent.solve(s.toType(DataType.INT32, false), 1, null, options));
        assertMessage("n >= 1", () -> CoordinateDescent.solve(manager.create(1f), 1, null, options));
    }

    static void assertMessage(String fragment, Executable executable) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, executable);
        assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' should contain '" + fragment + "'");
    }
}
