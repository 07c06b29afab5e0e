package dev.condjl.cuda.bench;

import dev.condjl.cuda.EpsSchedule;

/**
 * A plain-Java coordinate descent (colt5 spec §2.2, the reference's {@code coor_descent}) on row-major arrays,
 * either emulating float32 with the reference's operation order (every operation rounded to float except the sum
 * of exponentials, which is exact, as the native kernels' double or tree sums nearly are) or entirely in double.
 * The measuring stick of the native kernels in tests and benchmarks.
 */
public final class ReferenceCoorDescent {

    private ReferenceCoorDescent() {}

    /**
     * Coordinate descent on every row.
     *
     * @param s rows·n scores
     * @param mask rows·n validity (true = keep), or null
     * @param k one k per row
     * @param n row length
     * @param eps the ε schedule
     * @param fp32 round every operation to float (else double)
     * @return rows·n outputs, in double
     */
    public static double[] forward(float[] s, boolean[] mask, float[] k, int n, EpsSchedule eps, boolean fp32) {
        int rows = s.length / n;
        double[] y = new double[s.length];
        double[] b = new double[n];
        double[] z = new double[n];
        for (int r = 0; r < rows; r++) {
            int off = r * n;
            double logk = round(Math.log(Math.max(k[r], 1e-20f)), fp32);
            for (int i = 0; i < n; i++) {
                b[i] = -s[off + i];
            }
            double a = 0;
            boolean any = false;
            for (int t = 0; t < eps.iters(); t++) {
                double e = round(eps.epsAt(t), fp32);
                double m = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < n; i++) {
                    boolean valid = mask == null || mask[off + i];
                    z[i] = valid ? round(round(s[off + i] + b[i], fp32) / e, fp32) : Double.NEGATIVE_INFINITY;
                    m = Math.max(m, z[i]);
                }
                any = m != Double.NEGATIVE_INFINITY;
                if (!any) {
                    break;
                }
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    sum += Math.exp(round(z[i] - m, fp32));
                }
                double lse = round(m + round(Math.log(round(sum, fp32)), fp32), fp32);
                a = round(e * round(logk - lse, fp32), fp32);
                for (int i = 0; i < n; i++) {
                    b[i] = -Math.max(round(s[off + i] + a, fp32), 0);
                }
            }
            double ef = round(eps.epsAt(eps.iters()), fp32);
            for (int i = 0; i < n; i++) {
                boolean valid = any && (mask == null || mask[off + i]);
                double sa = round(s[off + i] + a, fp32);
                y[off + i] = valid ? round(Math.exp(round(round(sa + b[i], fp32) / ef, fp32)), fp32) : 0;
            }
        }
        return y;
    }

    /**
     * The implicit-function gradient in double: {@code w = y} where {@code y < 1}, {@code ds = (w/ε)(g − Σgw/Σw)}.
     *
     * @param y rows·n forward outputs
     * @param g rows·n upstream gradients
     * @param n row length
     * @param epsFinal the final ε
     * @return rows·n gradients
     */
    public static double[] backward(double[] y, double[] g, int n, double epsFinal) {
        double[] ds = new double[y.length];
        for (int off = 0; off < y.length; off += n) {
            double sgw = 0;
            double sw = 0;
            for (int i = off; i < off + n; i++) {
                double w = y[i] < 1 ? y[i] : 0;
                sgw += g[i] * w;
                sw += w;
            }
            double r = sw > 0 ? sgw / sw : 0;
            for (int i = off; i < off + n; i++) {
                double w = y[i] < 1 ? y[i] : 0;
                ds[i] = w / epsFinal * (g[i] - r);
            }
        }
        return ds;
    }

    private static double round(double x, boolean fp32) {
        return fp32 ? (float) x : x;
    }
}
