package dev.condjl.cuda.bench;

import dev.condjl.cuda.CondjlOps;
import dev.condjl.cuda.EpsSchedule;
import dev.condjl.cuda.LaunchConfig;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Benchmark of the fused coordinate-descent kernels on raw buffers (no libtorch needed), one JSON line per case:
 * {@code impl, rows, n, k, iters, fwd_ms, fwdbwd_ms, peak_extra_mib, max_abs_diff} plus the launch used.
 * {@code fwd_ms} / {@code fwdbwd_ms}: median over batches of back-to-back calls (CUDA events on the GPU);
 * {@code peak_extra_mib}: memory the op needs beyond its inputs (the output, plus the gradient for fwd+bwd; the
 * kernels allocate nothing else); {@code max_abs_diff}: forward output against the float64 reference.
 *
 * <p>Usage: {@code CoorDescentBench [--device gpu|cpu] [--reps N] [--case ROWSxN] [--sweep]}; {@code --sweep} also
 * times (and checks against the CPU kernel) other launch configurations of each case, as {@code condjl-cuda-sweep}
 * lines.
 */
public final class CoorDescentBench {

    /** eps 0.03, eps_init 4, eps_decay 0.7 (the router's defaults). */
    private static final double EPS = 0.03;
    private static final double EPS_INIT = 4;
    private static final double EPS_DECAY = 0.7;

    /**
     * One benchmark shape.
     *
     * @param rows number of rows
     * @param n row length
     * @param k sparsity
     * @param iters iterations
     */
    public record Case(int rows, int n, float k, int iters) {

        /**
         * The schedule of this case.
         *
         * @return eps 0.03, eps_init 4, decay 0.7, {@code iters} iterations
         */
        public EpsSchedule schedule() {
            return new EpsSchedule(iters, EPS, EPS_INIT, EPS_DECAY);
        }
    }

    /** The benchmark shapes. */
    public static final List<Case> CASES = List.of(new Case(2, 32768, 1024, 20), new Case(16, 4096, 512, 20),
            new Case(64, 8192, 1024, 50), new Case(8, 131072, 4096, 20), new Case(256, 2048, 256, 20),
            new Case(1, 1048576, 8192, 20));

    private CoorDescentBench() {}

    /**
     * Runs the benchmark.
     *
     * @param args see the class comment
     */
    public static void main(String[] args) {
        boolean gpu = CondjlOps.cudaAvailable();
        int reps = 0;
        String only = null;
        boolean sweep = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> gpu = "gpu".equals(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--case" -> only = args[++i];
                case "--sweep" -> sweep = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (!CondjlOps.isAvailable()) {
            throw new IllegalStateException("libcondjl_ops unavailable: " + CondjlOps.unavailableReason());
        }
        if (gpu && !CondjlOps.cudaAvailable()) {
            throw new IllegalStateException("CUDA unavailable: " + CondjlOps.cudaUnavailableReason());
        }
        System.err.println(gpu ? "device: " + CondjlOps.cudaDeviceName()
                : "device: CPU, " + Runtime.getRuntime().availableProcessors() + " threads");
        for (int c = 0; c < CASES.size(); c++) {
            Case bc = CASES.get(c);
            if (only != null && !only.equals(bc.rows() + "x" + bc.n())) {
                continue;
            }
            Data data = new Data(bc, 1234 + c);
            if (gpu) {
                try (GpuRun run = new GpuRun(data)) {
                    int r = reps > 0 ? reps : 200;
                    System.out.println(run.measure("condjl-cuda", LaunchConfig.AUTO, r));
                    if (sweep) {
                        for (LaunchConfig lc : sweepConfigs(bc)) {
                            System.out.println(run.measure("condjl-cuda-sweep", lc, r));
                        }
                    }
                }
            } else {
                System.out.println(measureCpu(data, reps > 0 ? reps : 10));
            }
        }
    }

    /** Launch configurations around the automatic one: blocks per row x threads, no streamed elements. */
    static List<LaunchConfig> sweepConfigs(Case c) {
        List<LaunchConfig> out = new ArrayList<>();
        for (int g = 1; g <= 16; g *= 2) {
            long chunk = (c.n() + g - 1) / g;
            for (int t = 128; t <= 1024; t *= 2) {
                if (chunk <= 16L * t && chunk >= 2L * t) {
                    out.add(new LaunchConfig(g, t, LaunchConfig.Mode.AUTO));
                }
            }
        }
        if (c.n() >= 65536) {
            for (int g : new int[] {32, 64, 128}) {
                long chunk = (c.n() + g - 1) / g;
                for (int t = 256; t <= 1024; t *= 2) {
                    if (chunk <= 16L * t && chunk >= 2L * t) {
                        out.add(new LaunchConfig(g, t, LaunchConfig.Mode.GRID));
                    }
                }
            }
        }
        return out;
    }

    private static String json(String impl, Case c, double fwd, double fwdbwd, double peakMib, double diff,
            String launch) {
        return String.format(Locale.ROOT,
                "{\"impl\": \"%s\", \"rows\": %d, \"n\": %d, \"k\": %d, \"iters\": %d, \"fwd_ms\": %.4f, "
                        + "\"fwdbwd_ms\": %.4f, \"peak_extra_mib\": %.3f, \"max_abs_diff\": %.3g, \"launch\": \"%s\"}",
                impl, c.rows(), c.n(), (int) c.k(), c.iters(), fwd, fwdbwd, peakMib, diff, launch);
    }

    private static String measureCpu(Data d, int reps) {
        Case c = d.c;
        long s = CondjlOps.address(d.s);
        long y = CondjlOps.address(d.y);
        long g = CondjlOps.address(d.g);
        long ds = CondjlOps.address(d.ds);
        Runnable fwd = () -> CondjlOps.coorDescentRaw(false, s, 0, 0, c.k(), c.rows(), c.n(), false, c.schedule(),
                y, 0, 0, LaunchConfig.AUTO);
        Runnable bwd = () -> CondjlOps.coorDescentBackwardRaw(false, y, g, ds, c.rows(), c.n(), false,
                c.schedule().epsFinal(), 0, LaunchConfig.AUTO);
        double fwdMs = medianMs(fwd, reps);
        double fwdBwdMs = medianMs(() -> {
            fwd.run();
            bwd.run();
        }, reps);
        return json("condjl-cpu", c, fwdMs, fwdBwdMs, d.bytes * 2 / 1048576.0, d.maxAbsDiff(d.y), "cpu threads="
                + Runtime.getRuntime().availableProcessors());
    }

    private static double medianMs(Runnable r, int reps) {
        r.run();
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }

    /** Host data of one case: random normal scores and upstream gradients, outputs, and the float64 reference. */
    private static final class Data {
        final Case c;
        final long bytes;
        final ByteBuffer s;
        final ByteBuffer g;
        final ByteBuffer y;
        final ByteBuffer ds;
        private final float[] scores;
        private double[] reference;

        Data(Case c, long seed) {
            this.c = c;
            int count = c.rows() * c.n();
            bytes = 4L * count;
            Random rnd = new Random(seed);
            scores = new float[count];
            s = direct(count);
            g = direct(count);
            y = direct(count);
            ds = direct(count);
            FloatBuffer sf = s.asFloatBuffer();
            FloatBuffer gf = g.asFloatBuffer();
            for (int i = 0; i < count; i++) {
                scores[i] = (float) rnd.nextGaussian();
                sf.put(i, scores[i]);
                gf.put(i, (float) rnd.nextGaussian());
            }
        }

        double maxAbsDiff(ByteBuffer out) {
            if (reference == null) {
                float[] k = new float[c.rows()];
                Arrays.fill(k, c.k());
                reference = ReferenceCoorDescent.forward(scores, null, k, c.n(), c.schedule(), false);
            }
            FloatBuffer o = out.asFloatBuffer();
            double max = 0;
            for (int i = 0; i < reference.length; i++) {
                max = Math.max(max, Math.abs(o.get(i) - reference[i]));
            }
            return max;
        }

        static ByteBuffer direct(int floats) {
            return ByteBuffer.allocateDirect(4 * floats).order(ByteOrder.nativeOrder());
        }
    }

    /** Device buffers of one case; times the CUDA kernels with events and checks them against the CPU kernels. */
    private static final class GpuRun implements AutoCloseable {
        private final Data d;
        private final long s;
        private final long g;
        private final long y;
        private final long ds;
        private final long start;
        private final long end;
        private final ByteBuffer cpuY;
        private final ByteBuffer cpuDs;

        GpuRun(Data d) {
            this.d = d;
            s = CondjlOps.cudaMalloc(d.bytes);
            g = CondjlOps.cudaMalloc(d.bytes);
            y = CondjlOps.cudaMalloc(d.bytes);
            ds = CondjlOps.cudaMalloc(d.bytes);
            CondjlOps.cudaMemcpy(s, CondjlOps.address(d.s), d.bytes);
            CondjlOps.cudaMemcpy(g, CondjlOps.address(d.g), d.bytes);
            start = CondjlOps.cudaEventCreate();
            end = CondjlOps.cudaEventCreate();
            Case c = d.c;
            cpuY = Data.direct(c.rows() * c.n());
            cpuDs = Data.direct(c.rows() * c.n());
            CondjlOps.coorDescentRaw(false, CondjlOps.address(d.s), 0, 0, c.k(), c.rows(), c.n(), false,
                    c.schedule(), CondjlOps.address(cpuY), 0, 0, LaunchConfig.AUTO);
            CondjlOps.coorDescentBackwardRaw(false, CondjlOps.address(cpuY), CondjlOps.address(d.g),
                    CondjlOps.address(cpuDs), c.rows(), c.n(), false, c.schedule().epsFinal(), 0, LaunchConfig.AUTO);
        }

        String measure(String impl, LaunchConfig lc, int reps) {
            Case c = d.c;
            Runnable fwd = () -> CondjlOps.coorDescentRaw(true, s, 0, 0, c.k(), c.rows(), c.n(), false,
                    c.schedule(), y, 0, 0, lc);
            Runnable bwd = () -> CondjlOps.coorDescentBackwardRaw(true, y, g, ds, c.rows(), c.n(), false,
                    c.schedule().epsFinal(), 0, lc);
            CondjlOps.cudaMemset(y, 0xff, d.bytes);  // NaN: every output must be written
            CondjlOps.cudaMemset(ds, 0xff, d.bytes);
            fwd.run();
            bwd.run();
            CondjlOps.cudaSynchronize();
            CondjlOps.cudaMemcpy(CondjlOps.address(d.y), y, d.bytes);
            CondjlOps.cudaMemcpy(CondjlOps.address(d.ds), ds, d.bytes);
            double diff = d.maxAbsDiff(d.y);
            double vsCpu = maxDiff(d.y, cpuY);
            double bwdVsCpu = maxDiff(d.ds, cpuDs);
            double fwdMs = eventMs(fwd, reps);
            double fwdBwdMs = eventMs(() -> {
                fwd.run();
                bwd.run();
            }, reps);
            String launch = CondjlOps.describeLaunch(c.rows(), c.n(), false, lc) + String.format(Locale.ROOT,
                    "; vs cpu fwd %.3g bwd %.3g", vsCpu, bwdVsCpu);
            return json(impl, c, fwdMs, fwdBwdMs, d.bytes * 2 / 1048576.0, diff, launch);
        }

        private double eventMs(Runnable r, int reps) {
            int batch = Math.max(10, reps / 5);
            for (int i = 0; i < batch; i++) {
                r.run();
            }
            double[] t = new double[5];
            for (int b = 0; b < t.length; b++) {
                CondjlOps.cudaEventRecord(start, 0);
                for (int i = 0; i < batch; i++) {
                    r.run();
                }
                CondjlOps.cudaEventRecord(end, 0);
                t[b] = CondjlOps.cudaEventElapsedMs(start, end) / batch;
            }
            Arrays.sort(t);
            return t[t.length / 2];
        }

        private static double maxDiff(ByteBuffer a, ByteBuffer b) {
            FloatBuffer fa = a.asFloatBuffer();
            FloatBuffer fb = b.asFloatBuffer();
            double max = 0;
            for (int i = 0; i < fa.capacity(); i++) {
                double v = Math.abs(fa.get(i) - fb.get(i));
                max = Double.isNaN(v) ? Double.NaN : Math.max(max, v);
                if (Double.isNaN(max)) {
                    return max;
                }
            }
            return max;
        }

        @Override
        public void close() {
            CondjlOps.cudaFree(s);
            CondjlOps.cudaFree(g);
            CondjlOps.cudaFree(y);
            CondjlOps.cudaFree(ds);
            CondjlOps.cudaEventDestroy(start);
            CondjlOps.cudaEventDestroy(end);
        }
    }
}
