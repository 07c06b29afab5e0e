package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.condjl.cuda.LaunchConfig.Mode;
import dev.condjl.cuda.bench.CoorDescentBench;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The CUDA kernels against the CPU kernels, on raw device buffers (no libtorch needed): every benchmark shape, every
 * launch mode (one block, cluster, cooperative grid with several rounds, elements streamed past the registers),
 * masks, per-row k and float16. Skipped, with the reason logged, where no usable GPU is present.
 */
@Tag("gpu")
class CoorDescentGpuTest {

    private static final Logger LOG = LogManager.getLogger(CoorDescentGpuTest.class);
    private static final EpsSchedule ROUTER = new EpsSchedule(20, 0.03, 4, 0.7);
    /**
     * Forward tolerance. Both sides follow the reference's float32 operation order but sum the exponentials in
     * different orders (tree vs double), so the float {@code a} they round to can differ by an ulp now and then;
     * the output moves by up to {@code ulp(a)/e_final}: 8e-6 for |a| < 4, 1.6e-5 for |a| < 8 at e_final = 0.03.
     */
    private static final double FORWARD_TOL = 5e-5;

    @BeforeAll
    static void logDevice() {
        String reason = CondjlOps.cudaUnavailableReason();
        if (!reason.isEmpty()) {
            LOG.warn("skipping the GPU tests: {}", reason);
        } else {
            LOG.info("GPU tests on {}", CondjlOps.cudaDeviceName());
        }
    }

    @BeforeEach
    void requireGpu() {
        Assumptions.assumeTrue(CondjlOps.cudaAvailable(), () -> "no usable GPU: " + CondjlOps.cudaUnavailableReason());
    }

    static Stream<CoorDescentBench.Case> benchCases() {
        return CoorDescentBench.CASES.stream();
    }

    @ParameterizedTest
    @MethodSource("benchCases")
    void benchmarkShapesMatchCpu(CoorDescentBench.Case c) {
        Random rnd = new Random(c.n() + c.rows());
        int count = c.rows() * c.n();
        float[] s = HostArrays.gaussian(rnd, count, 1.0);
        float[] g = HostArrays.gaussian(rnd, count, 1.0);
        Problem p = new Problem(c.rows(), c.n(), s, null, null, c.k(), c.schedule(), false);
        float[] cpu = p.run(false, LaunchConfig.AUTO);
        float[] gpu = p.run(true, LaunchConfig.AUTO);
        assertClose(cpu, gpu, FORWARD_TOL, "forward " + c + " " + CondjlOps.describeLaunch(c.rows(), c.n(), false,
                LaunchConfig.AUTO));
        float[] cpuDs = backward(false, cpu, g, c.rows(), c.n(), c.schedule().epsFinal(), LaunchConfig.AUTO);
        float[] gpuDs = backward(true, cpu, g, c.rows(), c.n(), c.schedule().epsFinal(), LaunchConfig.AUTO);
        assertClose(cpuDs, gpuDs, 1e-5 * maxAbs(cpuDs), "backward " + c);
    }

    static Stream<Arguments> launches() {
        return Stream.of(
                Arguments.of(3, 1000, new LaunchConfig(1, 32, Mode.BLOCK)),  // 488 elements streamed per thread row
                Arguments.of(3, 1000, LaunchConfig.AUTO),
                Arguments.of(2000, 33, LaunchConfig.AUTO),
                Arguments.of(1, 1, LaunchConfig.AUTO),
                Arguments.of(5, 4097, new LaunchConfig(2, 128, Mode.CLUSTER)),
                Arguments.of(5, 4097, new LaunchConfig(3, 64, Mode.CLUSTER)),  // streamed
                Arguments.of(5, 4097, new LaunchConfig(16, 32, Mode.CLUSTER)),
                Arguments.of(5, 4097, new LaunchConfig(4, 256, Mode.GRID)),
                Arguments.of(5, 4097, new LaunchConfig(3, 32, Mode.GRID)),  // streamed
                Arguments.of(7, 70000, new LaunchConfig(64, 1024, Mode.GRID)),  // several rounds, idle groups
                Arguments.of(2, 300000, LaunchConfig.AUTO));  // grid mode chosen automatically
    }

    @ParameterizedTest
    @MethodSource("launches")
    void everyLaunchModeMatchesCpu(int rows, int n, LaunchConfig launch) {
        Random rnd = new Random(rows * 31L + n);
        float[] s = HostArrays.gaussian(rnd, rows * n, 1.5);
        boolean[] mask = new boolean[rows * n];
        float[] logk = new float[rows];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = rnd.nextDouble() < 0.8;
        }
        for (int r = 0; r < rows; r++) {
            logk[r] = (float) Math.log(1 + rnd.nextInt(Math.max(1, n / 4)));
        }
        if (rows > 1) {
            Arrays.fill(mask, 0, n, false);  // a fully masked row
        }
        String what = rows + "x" + n + " " + CondjlOps.describeLaunch(rows, n, false, launch);
        for (boolean masked : new boolean[] {false, true}) {
            Problem p = new Problem(rows, n, s, masked ? mask : null, logk, 0, ROUTER, false);
            float[] cpu = p.run(false, LaunchConfig.AUTO);
            assertClose(cpu, p.run(true, launch), FORWARD_TOL, "forward " + what + (masked ? " masked" : ""));
            float[] g = HostArrays.gaussian(rnd, rows * n, 1.0);
            float[] cpuDs = backward(false, cpu, g, rows, n, ROUTER.epsFinal(), LaunchConfig.AUTO);
            float[] gpuDs = backward(true, cpu, g, rows, n, ROUTER.epsFinal(), launch);
            assertClose(cpuDs, gpuDs, 1e-5 * Math.max(1, maxAbs(cpuDs)), "backward " + what);
        }
    }

    /**
     * The CUDA output scores keep subnormals: y_of is IEEE division plus the CUDA math library's expf (at most 2 ulp,
     * the function torch.exp calls on CUDA tensors), and build.sh passes neither -use_fast_math nor -ftz=true, so the
     * final multiply of expf by 2^n rounds into the subnormals instead of flushing them. Same rows as the CPU test
     * {@code outputScoresUnderflowLikeTorchExp}: the argument is exactly RN(s / e).
     */
    @Test
    void outputScoresKeepSubnormals() {
        float[] s = CoorDescentKernelTest.UNDERFLOW_SCORES;
        float[] y = new Problem(s.length, 1, s, null, null, 1f, CoorDescentKernelTest.UNDERFLOW_EPS, false)
                .run(true, LaunchConfig.AUTO);
        double[] ref = CoorDescentKernelTest.underflowReference();
        int subnormal = 0;
        for (int i = 0; i < s.length; i++) {
            float expected = (float) ref[i];
            int row = i;
            assertTrue(Math.abs(y[i] - expected) <= 2 * Math.ulp(expected),
                    () -> "s = " + s[row] + ": exp = " + expected + ", CUDA " + y[row]);
            subnormal += y[i] > 0 && y[i] < Float.MIN_NORMAL ? 1 : 0;
        }
        assertTrue(subnormal > 2000, subnormal + " subnormal outputs");
    }

    @Test
    void float16MatchesCpu() {
        Random rnd = new Random(8);
        int rows = 6;
        int n = 5000;
        float[] s = HostArrays.gaussian(rnd, rows * n, 1.0);
        Problem p = new Problem(rows, n, s, null, null, 300, ROUTER, true);
        // Both round the same float result to half; a 1e-7 difference may cross a rounding boundary.
        assertClose(p.run(false, LaunchConfig.AUTO), p.run(true, LaunchConfig.AUTO), 1e-3, "float16");
    }

    @Test
    void implicitGradientWeightsMatchCpu() {
        Random rnd = new Random(10);
        Problem p = new Problem(4, 3000, HostArrays.gaussian(rnd, 4 * 3000, 1.0), null, null, 200, ROUTER, false);
        float[][] cpu = p.runWithWeights(false, LaunchConfig.AUTO);
        for (LaunchConfig launch : new LaunchConfig[] {LaunchConfig.AUTO, new LaunchConfig(3, 128, Mode.GRID)}) {
            float[][] gpu = p.runWithWeights(true, launch);
            assertClose(cpu[0], gpu[0], FORWARD_TOL, "weights run forward " + launch);
            // q = y / e_final where y < 1: the forward's tolerance scaled by 1 / e_final
            assertClose(cpu[1], gpu[1], FORWARD_TOL / ROUTER.epsFinal(), "weights " + launch);
        }
    }

    @Test
    void backwardMayOverwriteItsGradient() {
        Random rnd = new Random(9);
        int rows = 3;
        int n = 20000;
        float[] y = new Problem(rows, n, HostArrays.gaussian(rnd, rows * n, 1.0), null, null, 500, ROUTER, false)
                .run(false, LaunchConfig.AUTO);
        float[] g = HostArrays.gaussian(rnd, rows * n, 1.0);
        float[] expected = backward(false, y, g, rows, n, ROUTER.epsFinal(), LaunchConfig.AUTO);
        try (Device dy = new Device(HostArrays.floats(y)); Device dg = new Device(HostArrays.floats(g))) {
            CondjlOps.coorDescentBackwardRaw(true, dy.ptr, dg.ptr, dg.ptr, rows, n, false, ROUTER.epsFinal(), 0,
                    LaunchConfig.AUTO);
            assertClose(expected, HostArrays.read(dg.download()), 1e-5 * maxAbs(expected), "in place");
        }
    }

    @Test
    void rejectsImpossibleLaunches() {
        try (Device d = new Device(HostArrays.zeros(4 * 100))) {
            assertThrows(IllegalArgumentException.class, () -> CondjlOps.coorDescentRaw(true, d.ptr, 0, 0, 2f, 4,
                    100, false, ROUTER, d.ptr, 0, 0, new LaunchConfig(17, 32, Mode.CLUSTER)));
            assertThrows(IllegalArgumentException.class, () -> CondjlOps.coorDescentRaw(true, d.ptr, 0, 0, 2f, 4,
                    100, false, ROUTER, d.ptr, 0, 0, new LaunchConfig(1, 100, Mode.AUTO)));
            assertThrows(IllegalArgumentException.class, () -> CondjlOps.coorDescentRaw(true, d.ptr, 0, 0, 2f, 4,
                    100, false, ROUTER, d.ptr, 0, 0, new LaunchConfig(2, 32, Mode.BLOCK)));
        }
        assertTrue(CondjlOps.describeLaunch(1, 1048576, false, LaunchConfig.AUTO).startsWith("grid"));
        assertTrue(CondjlOps.describeLaunch(2, 32768, false, LaunchConfig.AUTO).startsWith("cluster"));
        assertTrue(CondjlOps.describeLaunch(256, 2048, false, LaunchConfig.AUTO).startsWith("block"));
    }

    private static float[] backward(boolean cuda, float[] y, float[] g, int rows, int n, float eps, LaunchConfig lc) {
        if (!cuda) {
            return CoorDescentKernelTest.backward(y, g, n, eps);
        }
        try (Device dy = new Device(HostArrays.floats(y)); Device dg = new Device(HostArrays.floats(g));
                Device out = new Device(nanBuffer(y.length, false))) {
            CondjlOps.coorDescentBackwardRaw(true, dy.ptr, dg.ptr, out.ptr, rows, n, false, eps, 0, lc);
            return HostArrays.read(out.download());
        }
    }

    private static ByteBuffer nanBuffer(int count, boolean half) {
        ByteBuffer b = ByteBuffer.allocateDirect(count * (half ? 2 : 4)).order(ByteOrder.nativeOrder());
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) 0xff);  // NaN in both float32 and float16: every output must be written
        }
        return b;
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        double diff = HostArrays.maxAbsDiff(actual, expected);
        LOG.info("{}: max |cuda - cpu| = {}", what, diff);
        assertTrue(diff <= tol, () -> what + ": max |cuda - cpu| = " + diff + " > " + tol);
    }

    /** One forward problem held in host buffers; runs on either side. */
    private static final class Problem {
        final int rows;
        final int n;
        final ByteBuffer s;
        final ByteBuffer mask;
        final ByteBuffer logk;
        final float k;
        final EpsSchedule eps;
        final boolean half;

        Problem(int rows, int n, float[] s, boolean[] mask, float[] logk, float k, EpsSchedule eps, boolean half) {
            this.rows = rows;
            this.n = n;
            this.s = half ? HostArrays.halves(s) : HostArrays.floats(s);
            this.mask = mask == null ? null : HostArrays.bytes(mask);
            this.logk = logk == null ? null : HostArrays.floats(logk);
            this.k = k;
            this.eps = eps;
            this.half = half;
        }

        float[] run(boolean cuda, LaunchConfig launch) {
            return runWithWeights(cuda, launch)[0];
        }

        /** Returns {y, q}: the output and the implicit-gradient weights. */
        float[][] runWithWeights(boolean cuda, LaunchConfig launch) {
            ByteBuffer out = nanBuffer(rows * n, half);
            ByteBuffer weights = nanBuffer(rows * n, half);
            if (!cuda) {
                CondjlOps.coorDescentRaw(false, CondjlOps.address(s), mask == null ? 0 : CondjlOps.address(mask),
                        logk == null ? 0 : CondjlOps.address(logk), k, rows, n, half, eps, CondjlOps.address(out),
                        CondjlOps.address(weights), 0, launch);
                return new float[][] {read(out), read(weights)};
            }
            try (Device ds = new Device(s); Device dm = mask == null ? null : new Device(mask);
                    Device dl = logk == null ? null : new Device(logk); Device dout = new Device(out);
                    Device dq = new Device(weights)) {
                CondjlOps.coorDescentRaw(true, ds.ptr, dm == null ? 0 : dm.ptr, dl == null ? 0 : dl.ptr, k, rows, n,
                        half, eps, dout.ptr, dq.ptr, 0, launch);
                return new float[][] {read(dout.download()), read(dq.download())};
            }
        }

        private float[] read(ByteBuffer b) {
            return half ? HostArrays.readHalves(b) : HostArrays.read(b);
        }
    }

    /** A device copy of a host buffer. */
    private static final class Device implements AutoCloseable {
        final long ptr;
        final ByteBuffer host;

        Device(ByteBuffer host) {
            this.host = host;
            ptr = CondjlOps.cudaMalloc(host.capacity());
            CondjlOps.cudaMemcpy(ptr, CondjlOps.address(host), host.capacity());
        }

        ByteBuffer download() {
            CondjlOps.cudaSynchronize();
            CondjlOps.cudaMemcpy(CondjlOps.address(host), ptr, host.capacity());
            return host;
        }

        @Override
        public void close() {
            CondjlOps.cudaFree(ptr);
        }
    }
}
