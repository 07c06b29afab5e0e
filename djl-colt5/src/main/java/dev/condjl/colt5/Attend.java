package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import dev.condjl.cuda.AttentionPrecision;
import dev.condjl.cuda.CondjlOps;

/**
 * The reference's {@code Attend}: plain scaled dot-product attention, as one fused libtorch op where it can be
 * ({@link CondjlOps#scaledDotProductAttention}: one op and one autograd node), else composed of DJL ops.
 */
public final class Attend {

    private Attend() {}

    /**
     * {@code softmax(q·kᵀ · dh^-0.5, masked to -finfo.max) · v}; a query whose keys are all masked averages the
     * values uniformly, as the reference does. Fused only when {@code keep} is null (see the five-argument form).
     *
     * @param q (..., i, dh) queries
     * @param k (..., j, dh) keys
     * @param v (..., j, dv) values
     * @param keep null, or a boolean mask broadcastable to (..., i, j), true = attend
     * @return (..., i, dv)
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray keep) {
        return attend(q, k, v, keep, false);
    }

    /**
     * {@link #attend(NDArray, NDArray, NDArray, NDArray)}, fused also with a mask when the caller knows that every
     * query keeps at least one key (as {@link Attention}'s always-kept null key ensures): the fused op's values
     * equal the formula's for every query, but its gradients from a query whose keys are all masked do not.
     *
     * @param q (..., i, dh) queries
     * @param k (..., j, dh) keys
     * @param v (..., j, dv) values
     * @param keep null, or a boolean mask broadcastable to (..., i, j), true = attend
     * @param everyQueryKeepsAKey whether each query has a true in {@code keep}
     * @return (..., i, dv)
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray keep, boolean everyQueryKeepsAKey) {
        return attend(q, k, v, keep, everyQueryKeepsAKey, AttentionPrecision.INPUT);
    }

    /**
     * {@link #attend(NDArray, NDArray, NDArray, NDArray, boolean)} with the fused op in {@code precision}
     * ({@link CondjlOps#usablePrecision}); the composed formula stays in the inputs' precision.
     *
     * @param q (..., i, dh) queries
     * @param k (..., j, dh) keys
     * @param v (..., j, dv) values
     * @param keep null, or a boolean mask broadcastable to (..., i, j), true = attend
     * @param everyQueryKeepsAKey whether each query has a true in {@code keep}
     * @param precision the fused op's precision
     * @return (..., i, dv)
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray keep, boolean everyQueryKeepsAKey,
            AttentionPrecision precision) {
        double scale = Math.pow(q.getShape().tail(), -0.5);
        NDArray bias = keep == null ? null : Tensors.maskBias(keep);
        if ((keep == null || everyQueryKeepsAKey) && CondjlOps.supportsScaledDotProductAttention(q, k, v, bias)) {
            return CondjlOps.scaledDotProductAttention(q, k, v, bias, scale, CondjlOps.usablePrecision(precision));
        }
        int rank = k.getShape().dimension();
        // in place on the fresh product (matMul's backward does not read its output): no extra (…, i, j) buffers
        NDArray sim = q.matMul(k.swapAxes(rank - 2, rank - 1));
        sim.muli(Tensors.scalar(sim, scale));
        if (bias != null) {
            sim.addi(bias);
        }
        return sim.softmax(-1).matMul(v);
    }
}
