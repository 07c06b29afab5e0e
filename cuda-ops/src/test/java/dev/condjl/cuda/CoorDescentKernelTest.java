package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.condjl.cuda.bench.ReferenceCoorDescent;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

/** The CPU kernels on raw buffers against the plain-Java reference (colt5 spec §2.2). */
class CoorDescentKernelTest {

    private static final EpsSchedule ROUTER = new EpsSchedule(20, 0.03, 4, 0.7);

    /** Runs the CPU forward; logk may be null (then k[0] for every row). */
    static float[] forward(float[] s, boolean[] mask, float[] logk, float k, int n, EpsSchedule eps) {
        ByteBuffer sb = HostArrays.floats(s);
        ByteBuffer out = HostArrays.zeros(s.length);
        ByteBuffer mb = mask == null ? null : HostArrays.bytes(mask);
        ByteBuffer lb = logk == null ? null : HostArrays.floats(logk);
        CondjlOps.coorDescentRaw(false, CondjlOps.address(sb), mb == null ? 0 : CondjlOps.address(mb),
                lb == null ? 0 : CondjlOps.address(lb), k, s.length / n, n, false, eps, CondjlOps.address(out), 0, 0,
                LaunchConfig.AUTO);
        return HostArrays.read(out);
    }

    static float[] backward(float[] y, float[] g, int n, float epsFinal) {
        ByteBuffer yb = HostArrays.floats(y);
        ByteBuffer gb = HostArrays.floats(g);
        ByteBuffer out = HostArrays.zeros(y.length);
        CondjlOps.coorDescentBackwardRaw(false, CondjlOps.address(yb), CondjlOps.address(gb), CondjlOps.address(out),
                y.length / n, n, false, epsFinal, 0, LaunchConfig.AUTO);
        return HostArrays.read(out);
    }

    static float logk(float k) {
        return (float) Math.log(Math.max(k, 1e-20f));
    }

    @Test
    void forwardMatchesFloat32Reference() {
        Random rnd = new Random(1);
        int[][] shapes = {{3, 7}, {5, 1000}, {2, 4097}, {9, 64}};
        for (EpsSchedule eps : new EpsSchedule[] {ROUTER, EpsSchedule.constant(10, 0.1)}) {
            for (int[] shape : shapes) {
                int rows = shape[0];
                int n = shape[1];
                float k = Math.max(1, n / 8f);
                float[] s = HostArrays.gaussian(rnd, rows * n, 1.0);
                float[] ks = new float[rows];
                Arrays.fill(ks, k);
                float[] y = forward(s, null, null, k, n, eps);
                double[] ref = ReferenceCoorDescent.forward(s, null, ks, n, eps, true);
                double diff = HostArrays.maxAbsDiff(y, ref);
                assertTrue(diff <= 1e-5, () -> Arrays.toString(shape) + " " + eps + ": max |diff| " + diff);
            }
        }
    }

    /** One iteration at ε = 0.03: with one-element rows and k = 1 the outputs are exactly exp(RN(s / 0.03)). */
    static final EpsSchedule UNDERFLOW_EPS = EpsSchedule.constant(1, 0.03);
    /** s / 0.03 from -80 (normal outputs) through -87.3 (subnormal) to -106.7 (zero), one score per row. */
    static final float[] UNDERFLOW_SCORES = new float[4000];

    static {
        for (int i = 0; i < UNDERFLOW_SCORES.length; i++) {
            UNDERFLOW_SCORES[i] = -2.4f - 0.8f * i / UNDERFLOW_SCORES.length;
        }
    }

    /** The float32 reference of {@link #UNDERFLOW_SCORES}: the correctly rounded float exp of RN(s / e). */
    static double[] underflowReference() {
        float[] k = new float[UNDERFLOW_SCORES.length];
        Arrays.fill(k, 1f);
        return ReferenceCoorDescent.forward(UNDERFLOW_SCORES, null, k, 1, UNDERFLOW_EPS, true);
    }

    /**
     * The output scores underflow through the subnormals to 0 as torch.exp does (no clamp), correctly rounded. With
     * one-element rows, k = 1 and one iteration, a = e·(ln 1 − lse(z ≡ 0)) is exactly 0 in any float arithmetic, so
     * the kernel's final argument is exactly the reference's RN(s / e) and its exp can be compared to the last bit with
     * the correctly rounded float exp.
     */
    @Test
    void outputScoresUnderflowLikeTorchExp() {
        float[] s = UNDERFLOW_SCORES;
        int rows = s.length;
        float[] y = forward(s, null, null, 1f, 1, UNDERFLOW_EPS);
        double[] ref = underflowReference();
        int subnormal = 0;
        int zero = 0;
        for (int i = 0; i < rows; i++) {
            int row = i;
            assertEquals(Float.floatToIntBits((float) ref[i]), Float.floatToIntBits(y[i]),
                    () -> "s = " + s[row] + ": exp(" + s[row] / 0.03f + ") = " + ref[row] + ", kernel " + y[row]);
            subnormal += y[i] > 0 && y[i] < Float.MIN_NORMAL ? 1 : 0;
            zero += y[i] == 0 ? 1 : 0;
        }
        assertTrue(subnormal > 2000 && zero > 300, subnormal + " subnormal and " + zero + " zero outputs");
    }

    @Test
    void maskedRowsAndPerRowK() {
        Random rnd = new Random(2);
        int rows = 6;
        int n = 300;
        float[] s = HostArrays.gaussian(rnd, rows * n, 2.0);
        boolean[] mask = new boolean[rows * n];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = rnd.nextDouble() < 0.7;
        }
        Arrays.fill(mask, 2 * n, 3 * n, false);  // a fully masked row
        Arrays.fill(mask, 3 * n, 4 * n, false);
        mask[3 * n + 17] = true;  // a row with one valid entry
        float[] ks = {1, 5, 7, 2, 150, 0.5f};
        float[] logk = new float[rows];
        for (int r = 0; r < rows; r++) {
            logk[r] = logk(ks[r]);
            s[r * n + 3] = Float.NEGATIVE_INFINITY;  // masked or not, -inf must not poison the row
            mask[r * n + 3] = false;
        }
        float[] y = forward(s, mask, logk, 1, n, ROUTER);
        double[] ref = ReferenceCoorDescent.forward(s, mask, ks, n, ROUTER, true);
        assertTrue(HostArrays.maxAbsDiff(y, ref) <= 1e-5, "max |diff| " + HostArrays.maxAbsDiff(y, ref));
        for (int i = 0; i < y.length; i++) {
            if (!mask[i]) {
                assertEquals(0f, y[i], "masked entry " + i);
            }
        }
        assertEquals(1f, y[3 * n + 17], 1e-6, "a single valid entry with k = 2 saturates");
    }

    @Test
    void backwardMatchesFormula() {
        Random rnd = new Random(3);
        int n = 500;
        float[] s = HostArrays.gaussian(rnd, 4 * n, 1.0);
        float[] y = forward(s, null, null, 40, n, ROUTER);
        float[] g = HostArrays.gaussian(rnd, y.length, 1.0);
        float[] ds = backward(y, g, n, ROUTER.epsFinal());
        double[] ref = ReferenceCoorDescent.backward(HostArrays.toDouble(y), HostArrays.toDouble(g), n,
                ROUTER.epsFinal());
        double scale = Arrays.stream(ref).map(Math::abs).max().orElse(1);
        assertTrue(scale > 1, "non-trivial gradient");
        assertTrue(HostArrays.maxAbsDiff(ds, ref) <= 1e-5 * scale, "max |diff| " + HostArrays.maxAbsDiff(ds, ref));
    }

    /** At convergence the implicit gradient is the gradient of the map s -> y(s): check it by central differences. */
    @Test
    void implicitGradientMatchesFiniteDifferencesOfTheConvergedMap() {
        Random rnd = new Random(4);
        int n = 12;
        float k = 3;
        EpsSchedule eps = EpsSchedule.constant(400, 0.5);
        float[] s = HostArrays.gaussian(rnd, n, 1.0);
        s[0] = 4;  // one saturated entry, so the w < 1 rule matters
        float[] y = forward(s, null, null, k, n, eps);
        double sum = 0;
        for (float v : y) {
            sum += v;
        }
        assertEquals(k, sum, 1e-4, "converged: the row sums to k");
        assertEquals(1f, y[0], "saturated");
        float[] g = HostArrays.gaussian(rnd, n, 1.0);
        float[] ds = backward(y, g, n, eps.epsFinal());
        float[] ks = {k};
        for (int j = 0; j < n; j++) {
            float[] plus = s.clone();
            float[] minus = s.clone();
            plus[j] += 1e-3f;
            minus[j] -= 1e-3f;
            double[] yp = ReferenceCoorDescent.forward(plus, null, ks, n, eps, false);
            double[] ym = ReferenceCoorDescent.forward(minus, null, ks, n, eps, false);
            double fd = 0;
            for (int i = 0; i < n; i++) {
                fd += g[i] * (yp[i] - ym[i]);
            }
            fd /= (double) plus[j] - minus[j];
            assertEquals(fd, ds[j], 1e-4, "d/ds_" + j);
        }
        assertEquals(0f, ds[0], "no gradient through a saturated entry");
    }

    @Test
    void rejectsBadRawArguments() {
        ByteBuffer b = HostArrays.zeros(8);
        long p = CondjlOps.address(b);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.coorDescentRaw(false, p, 0, 0, 0f, 2, 4, false, ROUTER, p, 0, 0, LaunchConfig.AUTO));
        assertTrue(e.getMessage().contains("k must be"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.coorDescentRaw(false, p, 0, 0, 2f, -1, 4, false, ROUTER, p, 0, 0, LaunchConfig.AUTO));
        assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.coorDescentRaw(false, 0, 0, 0, 2f, 2, 4, false, ROUTER, p, 0, 0, LaunchConfig.AUTO));
        assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.coorDescentBackwardRaw(false, p, p, p, 2, 4, false, 0f, 0, LaunchConfig.AUTO));
        assertThrows(IllegalArgumentException.class, () -> CondjlOps.address(ByteBuffer.allocate(4)));
        assertThrows(IllegalArgumentException.class, () -> new EpsSchedule(0, 0.1, 0.1, 1));
        assertThrows(IllegalArgumentException.class, () -> new EpsSchedule(5, 0.1, 0.1, -1));
    }
}
