package dev.condjl.stochastic;

/** How a {@link StochasticResidual} drops its branch during training. */
public enum StochasticDepthMode {
    /**
     * Run the branch on a random subset of samples, scaled by {@code b/k} ({@link
     * StochasticDepth}).
     */
    BATCH_SUBSET,
    /** Run the branch on every sample, then zero whole samples ({@link DropPath}). */
    DROP_PATH,
    /**
     * Skip the branch for the whole batch with probability p, keeping its parameters in the graph
     * ({@link LayerDrop}).
     */
    LAYER_DROP,
    /**
     * DINOv2's rule for tensor inputs: {@link #BATCH_SUBSET} when {@code p > 0.1}, otherwise {@link
     * #DROP_PATH}.
     */
    AUTO;

    /**
     * The concrete mode used at drop probability {@code p}.
     *
     * @param p the drop probability
     * @return this mode, or for {@link #AUTO} the mode DINOv2 picks at {@code p}
     */
    public StochasticDepthMode resolve(double p) {
        if (this != AUTO) {
            return this;
        }
        return p > StochasticDepth.SUBSET_THRESHOLD ? BATCH_SUBSET : DROP_PATH;
    }
}
