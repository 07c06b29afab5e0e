package dev.condjl.cuda;

/**
 * The ε schedule of coordinate descent: iteration {@code t} (0-based) uses {@code (float) e_t} with
 * {@code e_0 = max(epsInit, eps)} and {@code e_{t+1} = max(e_t · epsDecay, eps)}, computed in double like the
 * reference's Python floats; the output uses {@code (float) e_iters}, the value after the last decay.
 *
 * @param iters number of iterations, {@code > 0}
 * @param eps final (smallest) ε, {@code > 0}
 * @param epsInit starting ε, {@code > 0} (the reference's {@code eps_init or eps})
 * @param epsDecay factor per iteration, {@code > 0}
 */
public record EpsSchedule(int iters, double eps, double epsInit, double epsDecay) {

    /** Validates the arguments. */
    public EpsSchedule {
        if (iters <= 0) {
            throw new IllegalArgumentException("nIters must be > 0, got " + iters);
        }
        if (!(eps > 0) || !(epsInit > 0) || !(epsDecay > 0) || Double.isInfinite(eps + epsInit + epsDecay)) {
            throw new IllegalArgumentException("eps, epsInit and epsDecay must be finite and > 0, got eps=" + eps
                    + ", epsInit=" + epsInit + ", epsDecay=" + epsDecay);
        }
    }

    /**
     * A constant ε.
     *
     * @param iters number of iterations
     * @param eps ε of every iteration
     * @return the schedule
     */
    public static EpsSchedule constant(int iters, double eps) {
        return new EpsSchedule(iters, eps, eps, 1.0);
    }

    /**
     * The ε of iteration {@code t}; {@code t = iters} gives the final ε used for the output.
     *
     * @param t iteration, {@code 0 <= t <= iters}
     * @return {@code e_t} in double
     */
    public double epsAt(int t) {
        double e = Math.max(epsInit, eps);
        for (int i = 0; i < t; i++) {
            e = Math.max(e * epsDecay, eps);
        }
        return e;
    }

    /**
     * The ε of the output, {@code (float) e_iters}.
     *
     * @return the final ε
     */
    public float epsFinal() {
        return (float) epsAt(iters);
    }
}
