package dev.condjl.colt5;

import dev.condjl.topk.Backend;
import dev.condjl.topk.TieBreak;

/**
 * The options of {@link CoordinateDescentRouter}, the reference's keyword arguments with its defaults
 * ({@code use_triton} and {@code triton_checkpoint_segments} are replaced by {@link #optBackend}). Kept apart from
 * the router so that {@code CoordinateDescentRouter.java} reads as the routing algorithm;
 * {@link CoordinateDescentRouter.Builder} is the only concrete builder.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class CoordinateDescentRouterBuilder<T extends CoordinateDescentRouterBuilder<T>> {

    int dim;
    boolean straightThrough = true;
    int nIters = 20;
    double fetchKRatio = 9.0 / 8.0;
    double eps = 0.03;
    double epsDecay = 0.7;
    Double epsInit = 4.0;
    int numRoutingTokens = 1;
    boolean learnedRoutingTokens;
    boolean cosineSimRouting;
    double cosineSimScale = 8;
    double trainingNoise;
    Integer routeBlockSize;
    TieBreak tieBreak = TieBreak.BY_INPUT;
    Backend backend = Backend.AUTO;

    CoordinateDescentRouterBuilder() {}

    /**
     * This builder as its concrete type.
     *
     * @return {@code this}
     */
    protected abstract T self();

    /**
     * Copies every option into another builder.
     *
     * @param c the builder to overwrite
     */
    void copyOptionsTo(CoordinateDescentRouterBuilder<?> c) {
        c.dim = dim;
        c.straightThrough = straightThrough;
        c.nIters = nIters;
        c.fetchKRatio = fetchKRatio;
        c.eps = eps;
        c.epsDecay = epsDecay;
        c.epsInit = epsInit;
        c.numRoutingTokens = numRoutingTokens;
        c.learnedRoutingTokens = learnedRoutingTokens;
        c.cosineSimRouting = cosineSimRouting;
        c.cosineSimScale = cosineSimScale;
        c.trainingNoise = trainingNoise;
        c.routeBlockSize = routeBlockSize;
        c.tieBreak = tieBreak;
        c.backend = backend;
    }

    /**
     * Sets the token width (required).
     *
     * @param dim {@code > 0}
     * @return this builder
     */
    public T setDim(int dim) {
        this.dim = dim;
        return self();
    }

    /**
     * Whether selected scores are straight-through (exactly 1.0 forward, gradient of the soft score).
     *
     * @param straightThrough default true
     * @return this builder
     */
    public T optStraightThrough(boolean straightThrough) {
        this.straightThrough = straightThrough;
        return self();
    }

    /**
     * Sets the coordinate-descent iterations.
     *
     * @param nIters default 20
     * @return this builder
     */
    public T optNIters(int nIters) {
        this.nIters = nIters;
        return self();
    }

    /**
     * Sets the ratio by which the soft top-k's k exceeds K.
     *
     * @param fetchKRatio default 9/8, {@code >= 1}
     * @return this builder
     */
    public T optFetchKRatio(double fetchKRatio) {
        this.fetchKRatio = fetchKRatio;
        return self();
    }

    /**
     * Sets the final (smallest) ε.
     *
     * @param eps default 0.03
     * @return this builder
     */
    public T optEps(double eps) {
        this.eps = eps;
        return self();
    }

    /**
     * Sets the per-iteration ε decay.
     *
     * @param epsDecay default 0.7
     * @return this builder
     */
    public T optEpsDecay(double epsDecay) {
        this.epsDecay = epsDecay;
        return self();
    }

    /**
     * Sets the initial ε (null: start at {@code eps}).
     *
     * @param epsInit default 4.0
     * @return this builder
     */
    public T optEpsInit(Double epsInit) {
        this.epsInit = epsInit;
        return self();
    }

    /**
     * Sets the number of routing tokens R (kv routes).
     *
     * @param numRoutingTokens default 1
     * @return this builder
     */
    public T optNumRoutingTokens(int numRoutingTokens) {
        this.numRoutingTokens = numRoutingTokens;
        return self();
    }

    /**
     * Sets the exploration noise of training: N(0, σ²) added to every similarity before the soft top-k, in training
     * only (noisy top-k gating, Shazeer et al. 2017). Without it a router can lock onto tokens that are useless but
     * score high from the start: tokens it never routes get no gradient that would raise them. Not in the reference.
     *
     * @param sigma σ, in the similarity's units (cosine routing: {@code cosineSimScale · cos}); default 0 (none)
     * @return this builder
     */
    public T optTrainingNoise(double sigma) {
        this.trainingNoise = sigma;
        return self();
    }

    /**
     * Whether the routing tokens are supplied at forward time instead of being a parameter.
     *
     * @param learnedRoutingTokens default false
     * @return this builder
     */
    public T optLearnedRoutingTokens(boolean learnedRoutingTokens) {
        this.learnedRoutingTokens = learnedRoutingTokens;
        return self();
    }

    boolean isLearnedRoutingTokens() {
        return learnedRoutingTokens;
    }

    /**
     * Whether the similarity is a scaled cosine similarity.
     *
     * @param cosineSimRouting default false
     * @return this builder
     */
    public T optCosineSimRouting(boolean cosineSimRouting) {
        this.cosineSimRouting = cosineSimRouting;
        return self();
    }

    /**
     * Sets the cosine-similarity scale.
     *
     * @param cosineSimScale default 8
     * @return this builder
     */
    public T optCosineSimScale(double cosineSimScale) {
        this.cosineSimScale = cosineSimScale;
        return self();
    }

    /**
     * Routes evenly from blocks of this many tokens (null: from the whole sequence).
     *
     * @param routeBlockSize default null
     * @return this builder
     */
    public T optRouteBlockSize(Integer routeBlockSize) {
        this.routeBlockSize = routeBlockSize;
        return self();
    }

    /**
     * How the top-k orders equal scores (coordinate-descent scores saturate at exactly 1.0 and underflow to
     * exactly 0.0, the masked tokens' score); see the router's class comment for why the default is not the
     * reference's.
     *
     * @param tieBreak default {@link TieBreak#BY_INPUT}; {@link TieBreak#REFERENCE} for the reference's plain
     *     top-k
     * @return this builder
     */
    public T optTieBreak(TieBreak tieBreak) {
        this.tieBreak = tieBreak;
        return self();
    }

    /**
     * Sets the coordinate-descent backend.
     *
     * @param backend default {@link Backend#AUTO}
     * @return this builder
     */
    public T optBackend(Backend backend) {
        this.backend = backend;
        return self();
    }

    /**
     * Checks the options.
     *
     * @throws IllegalArgumentException if an option is out of range
     */
    void validate() {
        Builders.positive("dim", dim);
        Builders.positive("nIters", nIters);
        Builders.positive("numRoutingTokens", numRoutingTokens);
        if (!(fetchKRatio >= 1)) {
            throw new IllegalArgumentException("fetchKRatio (" + fetchKRatio + ") must be >= 1");
        }
        if (routeBlockSize != null) {
            Builders.positive("routeBlockSize", routeBlockSize);
        }
        if (!(trainingNoise >= 0) || Double.isInfinite(trainingNoise)) {
            throw new IllegalArgumentException("trainingNoise (" + trainingNoise + ") must be a finite number >= 0");
        }
        if (tieBreak == null || backend == null) {
            throw new IllegalArgumentException("tieBreak and backend must not be null");
        }
    }
}
