package dev.condjl.colt5;

import static dev.condjl.cuda.AttentionGradients.assertClose;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import dev.condjl.cuda.AttentionPrecision;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fused forms a GPU runs, {@link LocalAttention#attendBanded} (one attention over the sequence with a band bias,
 * for short sequences) and {@link LocalAttention#attendWindows} (one attention of each window over look-around views
 * of the keys), against the composed windowed look-around form on the CPU: the same values and gradients with respect
 * to q, k and v for every window layout, also when {@code n} is not a multiple of the window; the fused windows
 * against the composed form also on DJL's default device (a GPU's fused attention kernels where there is one); and
 * the limits within which {@link LocalAttention#attend} picks the banded form.
 */
class LocalAttentionTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        manager.getEngine().setRandomSeed(3);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @ParameterizedTest(name = "n={0} w={1} causal={2} back={3} forward={4} exact={5}")
    @CsvSource({
        "24, 8, false, 1, 1, false",
        "21, 8, false, 1, 1, false",
        "21, 8, false, 1, 1, true",
        "24, 8, true, 1, 0, false",
        "19, 8, true, 1, 0, true",
        "30, 4, false, 2, 0, true",
        "30, 4, true, 2, 1, false",
        "5, 8, false, 1, 1, false"
    })
    void fusedFormsEqualWindowed(int n, int w, boolean causal, int back, int forward, boolean exact) {
        LocalAttention.Window window = new LocalAttention.Window(w, causal, back, forward, exact);
        NDArray q = manager.randomNormal(new Shape(2, 3, n, 8));
        NDArray k = manager.randomNormal(new Shape(2, 3, n, 8));
        NDArray v = manager.randomNormal(new Shape(2, 3, n, 8));
        NDArray upstream = manager.randomNormal(new Shape(2, 3, n, 8));
        NDList windowed = valueAndGradients(q, k, v, upstream,
                in -> LocalAttention.attendComposed(in[0], in[1], in[2], null, window));
        NDList banded = valueAndGradients(q, k, v, upstream,
                in -> LocalAttention.attendBanded(in[0], in[1], in[2], window, AttentionPrecision.INPUT));
        NDList fusedWindows = valueAndGradients(q, k, v, upstream,
                in -> LocalAttention.attendWindows(in[0], in[1], in[2], window, AttentionPrecision.INPUT));
        String[] names = {"value", "dq", "dk", "dv"};
        for (int i = 0; i < 4; i++) {
            assertClose(windowed.get(i), banded.get(i), "banded " + names[i]);
            assertClose(windowed.get(i), fusedWindows.get(i), "fused windows " + names[i]);
        }
    }

    /**
     * On DJL's default device (the GPU's fused kernels where there is one): the fused windows equal the composed form
     * in value and gradients, for sequences of several windows that are and are not a multiple of the window, causal
     * or not.
     */
    @ParameterizedTest(name = "n={0} w={1} causal={2} back={3} forward={4} exact={5}")
    @CsvSource({
        "320, 64, false, 1, 1, false",
        "300, 64, false, 1, 1, false",
        "300, 64, true, 1, 0, true",
        "257, 32, true, 2, 0, false"
    })
    void fusedWindowsEqualComposedOnTheDefaultDevice(int n, int w, boolean causal, int back, int forward,
            boolean exact) {
        try (NDManager device = NDManager.newBaseManager()) {
            LocalAttention.Window window = new LocalAttention.Window(w, causal, back, forward, exact);
            Shape shape = new Shape(2, 4, n, 16);
            NDArray q = device.randomNormal(shape);
            NDArray k = device.randomNormal(shape);
            NDArray v = device.randomNormal(shape);
            NDArray upstream = device.randomNormal(shape);
            NDList composed = valueAndGradients(q, k, v, upstream,
                    in -> LocalAttention.attendComposed(in[0], in[1], in[2], null, window));
            NDList fused = valueAndGradients(q, k, v, upstream,
                    in -> LocalAttention.attendWindows(in[0], in[1], in[2], window, AttentionPrecision.INPUT));
            String[] names = {"value", "dq", "dk", "dv"};
            for (int i = 0; i < 4; i++) {
                assertClose(composed.get(i), fused.get(i), device.getDevice() + " " + names[i]);
            }
        }
    }

    @Test
    void bandedFormOnlyForShortSequencesOfBoundedWork() {
        // the demo's light attention (batch 16, 4 heads of 16, n = 512) and the benchmark's up to n = 2,048
        assertTrue(LocalAttention.bandedFits(16, 4, 512, 16, 16));
        assertTrue(LocalAttention.bandedFits(1, 8, 2048, 32, 32));
        assertFalse(LocalAttention.bandedFits(1, 1, 2049, 1, 1));
        assertFalse(LocalAttention.bandedFits(1, 8, 4096, 32, 32));
        // 2^32 multiply-adds exactly fit, one more batch row does not
        assertTrue(LocalAttention.bandedFits(64, 1, 1024, 32, 32));
        assertFalse(LocalAttention.bandedFits(65, 1, 1024, 32, 32));
    }
}
