package dev.condjl.colt5.cdattention;

import dev.condjl.topk.Backend;
import dev.condjl.topk.CoordinateDescent;

/**
 * The keyword arguments that {@link Attention} and {@link FeedForward} share: {@code dim} and the coordinate-descent
 * schedule ({@code coor_descent_iters}, {@code coor_descent_eps}, {@code coor_descent_eps_init},
 * {@code coor_descent_eps_decay}), with the reference's defaults 20, 0.1, 4 and 0.7.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class CoorDescentBuilder<T extends CoorDescentBuilder<T>> {

    long dim;
    private int coorDescentIters = 20;
    private double coorDescentEps = 0.1;
    private Double coorDescentEpsInit = 4.0;
    private double coorDescentEpsDecay = 0.7;
    private Backend coorDescentBackend = Backend.AUTO;

    CoorDescentBuilder() {}

    /**
     * Returns this builder as its concrete type.
     *
     * @return {@code this}
     */
    protected abstract T self();

    /**
     * Sets the model dimension {@code d} ({@code dim}); required.
     *
     * @param dim at least 1
     * @return this builder
     */
    public T setDim(long dim) {
        this.dim = dim;
        return self();
    }

    /**
     * Sets the coordinate-descent iterations ({@code coor_descent_iters}); default 20.
     *
     * @param iters at least 1
     * @return this builder
     */
    public T optCoorDescentIters(int iters) {
        this.coorDescentIters = iters;
        return self();
    }

    /**
     * Sets the final ε ({@code coor_descent_eps}); default 0.1.
     *
     * @param eps {@code > 0}
     * @return this builder
     */
    public T optCoorDescentEps(double eps) {
        this.coorDescentEps = eps;
        return self();
    }

    /**
     * Sets the initial ε ({@code coor_descent_eps_init}); default 4.
     *
     * @param epsInit null (start at eps) or {@code > 0}
     * @return this builder
     */
    public T optCoorDescentEpsInit(Double epsInit) {
        this.coorDescentEpsInit = epsInit;
        return self();
    }

    /**
     * Sets the ε decay per iteration ({@code coor_descent_eps_decay}); default 0.7.
     *
     * @param epsDecay {@code > 0}
     * @return this builder
     */
    public T optCoorDescentEpsDecay(double epsDecay) {
        this.coorDescentEpsDecay = epsDecay;
        return self();
    }

    /**
     * Chooses how coordinate descent runs; default {@link Backend#AUTO}. The reference's gradient is that of the
     * unrolled iterations ({@link Backend#UNROLLED}); the fused backend has the same forward but the implicit
     * gradient of the converged solution.
     *
     * @param backend the backend
     * @return this builder
     */
    public T optCoorDescentBackend(Backend backend) {
        this.coorDescentBackend = backend;
        return self();
    }

    /**
     * The coordinate-descent options.
     *
     * @return iterations, ε schedule and backend
     * @throws IllegalArgumentException if one is out of range
     */
    CoordinateDescent.Options options() {
        return CoordinateDescent.Options.builder()
                .setIters(coorDescentIters)
                .optEps(coorDescentEps)
                .optEpsInit(coorDescentEpsInit)
                .optEpsDecay(coorDescentEpsDecay)
                .optBackend(coorDescentBackend)
                .build();
    }
}
