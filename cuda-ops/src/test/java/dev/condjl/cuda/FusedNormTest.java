package dev.condjl.cuda;

import static dev.condjl.cuda.Refusals.assertMessage;
import static dev.condjl.cuda.AttentionGradients.assertClose;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link FusedNorm#rmsNorm}, on DJL's default device: available exactly on a libtorch whose dispatcher takes lists;
 * there its values and gradients equal DJL's {@code normalize(x) · weight} composition within float rounding, a
 * zero row stays zero; bad input is refused everywhere.
 */
class FusedNormTest {

    private static final double EPS = 1e-12;
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(5);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableWhereTheDispatcherTakesLists() {
        String[] version = Engine.getEngine("PyTorch").getVersion().split("[.+]");
        int major = Integer.parseInt(version[0]);
        int minor = Integer.parseInt(version[1]);
        String reason = FusedNorm.unavailableReason();
        if (major > 2 || major == 2 && minor >= 11) {
            assertEquals("", reason);
        } else if (major == 2 && minor < 10) {
            assertTrue(reason.contains("torch_new_list_reserve_size"), reason);
            NDArray x = manager.ones(new Shape(2, 4));
            assertFalse(FusedNorm.supports(x, null));
            assertThrows(IllegalStateException.class, () -> FusedNorm.rmsNorm(x, null, EPS));
        }
        // 2.10: either, as its exports decide; the other tests cover what follows from the answer
    }

    @Test
    void equalsNormalizeTimesWeightWithGradients() {
        assumeAvailable();
        int d = 48;
        NDArray x = manager.randomNormal(new Shape(3, 7, d));
        NDArray weight = manager.randomNormal(new Shape(d));
        NDArray upstream = manager.randomNormal(new Shape(3, 7, d));
        double sqrtD = Math.sqrt(d);
        NDList fused = valueAndGradients(upstream, in -> FusedNorm.rmsNorm(in[0], in[1], EPS * EPS / d), x, weight);
        NDList composed = valueAndGradients(upstream,
                in -> in[0].normalize(2, -1, EPS).mul(sqrtD).mul(in[1]), x, weight);
        String[] names = {"value", "dx", "dweight"};
        for (int i = 0; i < 3; i++) {
            assertClose(composed.get(i), fused.get(i), names[i]);
        }
    }

    @Test
    void withoutWeightNormalizesToUnitRootMeanSquare() {
        assumeAvailable();
        NDArray x = manager.randomNormal(new Shape(5, 32)).mul(7);
        NDArray y = FusedNorm.rmsNorm(x, null, 0);
        assertEquals(x.getDevice(), y.getDevice());
        float[] meanSquares = y.square().mean(new int[] {-1}).toFloatArray();
        for (float ms : meanSquares) {
            assertEquals(1, ms, 1e-5);
        }
    }

    @Test
    void zeroRowStaysZero() {
        assumeAvailable();
        NDArray x = manager.zeros(new Shape(2, 8));
        NDArray y = FusedNorm.rmsNorm(x, manager.ones(new Shape(8)), EPS * EPS / 8);
        assertEquals(0, y.abs().max().getFloat());
    }

    @Test
    void refusesBadInputNamingIt() {
        NDArray x = manager.ones(new Shape(2, 8));
        assertMessage("weight (5) must be (8)", () -> FusedNorm.rmsNorm(x, manager.ones(new Shape(5)), EPS));
        assertMessage("x must be float32, got int32",
                () -> FusedNorm.rmsNorm(x.toType(DataType.INT32, false), null, EPS));
        assertMessage("weight must be float32", () -> FusedNorm.rmsNorm(x, manager.ones(new Shape(8)).toType(
                DataType.FLOAT64, false), EPS));
        assertMessage("at least one dimension", () -> FusedNorm.rmsNorm(manager.create(1f), null, EPS));
        assertMessage("eps must be finite and >= 0", () -> FusedNorm.rmsNorm(x, null, -1));
        assertMessage("x must not be null", () -> FusedNorm.rmsNorm(null, null, EPS));
        assertFalse(FusedNorm.supports(x, manager.ones(new Shape(5))));
    }


    private static void assumeAvailable() {
        Assumptions.assumeTrue(FusedNorm.unavailableReason().isEmpty(),
                () -> "no fused RMS norm on this libtorch: " + FusedNorm.unavailableReason());
    }
}
