package dev.condjl.topk;

/** How {@link CoordinateDescent#solve} computes the soft top-k. */
public enum Backend {
    /**
     * Every iteration as ordinary NDArray operations (the reference's {@code coor_descent}); autograd flows through
     * all iterations, so memory grows with the iteration count.
     */
    UNROLLED,
    /** The fastest backend available for the input's engine and device. */
    AUTO
}
