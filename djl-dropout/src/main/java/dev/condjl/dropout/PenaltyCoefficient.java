package dev.condjl.dropout;

import java.util.Locale;

/**
 * The coefficient of the LearnedDropout penalty per optimizer step (yif-AI's {@code PenaltyCoeffConfig}, spec §4.5).
 *
 * <ul>
 *   <li>constant: {@code coeff(t) = maxCoeff};
 *   <li>exponential ramp: {@code coeff(t) = min(exp(expRate·t) + c0, maxCoeff)} with {@code c0 = minCoeff − 1}, so
 *       {@code coeff(0) = minCoeff} (0 when no minimum is given).
 * </ul>
 *
 * <p>{@code t} is the optimizer-step index (0 for the first step); every micro-batch of a step uses the same value.
 */
public final class PenaltyCoefficient {

    private final double minCoeff;
    private final double maxCoeff;
    private final double expRate;

    private PenaltyCoefficient(double minCoeff, double maxCoeff, double expRate) {
        this.minCoeff = minCoeff;
        this.maxCoeff = maxCoeff;
        this.expRate = expRate;
    }

    /**
     * A constant coefficient (the reference's default is 0.1 when the penalty is on).
     *
     * @param maxCoeff the coefficient, &gt; 0
     * @return the schedule
     * @throws IllegalArgumentException if maxCoeff is not positive
     */
    public static PenaltyCoefficient constant(double maxCoeff) {
        checkMax(maxCoeff);
        return new PenaltyCoefficient(maxCoeff, maxCoeff, 0);
    }

    /**
     * An exponential ramp from 0: {@code min(exp(expRate·t) − 1, maxCoeff)}.
     *
     * @param expRate growth rate in (0, 1)
     * @param maxCoeff cap, &gt; 0
     * @return the schedule
     * @throws IllegalArgumentException if an argument is out of range
     */
    public static PenaltyCoefficient exponential(double expRate, double maxCoeff) {
        return exponential(0, expRate, maxCoeff);
    }

    /**
     * An exponential ramp from {@code minCoeff}: {@code min(exp(expRate·t) + minCoeff − 1, maxCoeff)}.
     *
     * @param minCoeff value at t = 0, in [0, maxCoeff)
     * @param expRate growth rate in (0, 1)
     * @param maxCoeff cap, &gt; 0
     * @return the schedule
     * @throws IllegalArgumentException if an argument is out of range
     */
    public static PenaltyCoefficient exponential(double minCoeff, double expRate, double maxCoeff) {
        checkMax(maxCoeff);
        if (!(minCoeff >= 0 && minCoeff < maxCoeff)) {
            throw new IllegalArgumentException(
                    "minCoeff (" + minCoeff + ") must be in [0, maxCoeff (" + maxCoeff + "))");
        }
        if (!(expRate > 0 && expRate < 1)) {
            throw new IllegalArgumentException("expRate (" + expRate + ") must be in (0, 1)");
        }
        return new PenaltyCoefficient(minCoeff, maxCoeff, expRate);
    }

    private static void checkMax(double maxCoeff) {
        if (!(maxCoeff > 0 && Double.isFinite(maxCoeff))) {
            throw new IllegalArgumentException("maxCoeff (" + maxCoeff + ") must be finite and > 0");
        }
    }

    /**
     * The coefficient at an optimizer step.
     *
     * @param step optimizer-step index t ≥ 0
     * @return coeff(t)
     * @throws IllegalArgumentException if step is negative
     */
    public double at(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step (" + step + ") must be >= 0");
        }
        if (expRate == 0) {
            return maxCoeff;
        }
        return Math.min(Math.exp(expRate * step) + minCoeff - 1, maxCoeff);
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return expRate == 0
                ? String.format(Locale.ROOT, "constant(%s)", maxCoeff)
                : String.format(Locale.ROOT, "exponential(min=%s, rate=%s, max=%s)", minCoeff, expRate, maxCoeff);
    }
}
