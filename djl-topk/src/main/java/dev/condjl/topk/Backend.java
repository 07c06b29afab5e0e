package dev.condjl.topk;

/** How {@link CoordinateDescent#solve} computes the soft top-k. */
public enum Backend {
    /**
     * Every iteration as ordinary NDArray operations (the reference's {@code coor_descent}); autograd flows through
     * all iterations, so memory grows with the iteration count.
     */
    UNROLLED,
    /**
     * All iterations in one native call (cuda-ops' {@code CondjlOps}, CPU or CUDA); the gradient is the implicit
     * gradient of the converged solution, O(n) memory. Same forward as {@link #UNROLLED}; see
     * {@link FusedCoordinateDescent} for how far its gradient is from the unrolled one.
     */
    FUSED,
    /**
     * {@link #FUSED} when the native library loaded and supports the input's dtype and device, else
     * {@link #UNROLLED}.
     */
    AUTO
}
