package dev.condjl.stochastic;

/** Per-layer drop probabilities for a stack of residual layers. */
public final class DepthSchedule {

    private DepthSchedule() {}

    /**
     * The linear schedule of DINOv2 and timm, {@code np.linspace(0, maxRate, depth)}: layer {@code
     * i} gets {@code i * maxRate / (depth - 1)}, the first layer 0 and the last exactly {@code
     * maxRate}. The arithmetic follows numpy ({@code i * step} with {@code step = maxRate / (depth
     * - 1)}) so the rates, and therefore {@link StochasticDepthMode#AUTO}'s choice at the 0.1
     * threshold, match the reference bit for bit.
     *
     * @param maxRate the rate of the last layer, in {@code [0, 1]}
     * @param depth the number of layers, {@code >= 1}; a single layer gets rate 0
     * @return {@code depth} rates
     */
    public static double[] linear(double maxRate, int depth) {
        StochasticDepth.checkProbability("maxRate", maxRate);
        if (depth < 1) {
            throw new IllegalArgumentException("depth (" + depth + ") must be >= 1");
        }
        double[] rates = new double[depth];
        if (depth == 1) {
            return rates;
        }
        double step = maxRate / (depth - 1);
        for (int i = 0; i < depth; i++) {
            rates[i] = i * step;
        }
        rates[depth - 1] = maxRate;
        return rates;
    }
}
