package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;

/** The reference's {@code Attend}: plain scaled dot-product attention. */
public final class Attend {

    private Attend() {}

    /**
     * {@code softmax(q·kᵀ · dh^-0.5, masked to -finfo.max) · v}; a query whose keys are all masked averages the
     * values uniformly, as the reference does.
     *
     * @param q (..., i, dh) queries
     * @param k (..., j, dh) keys
     * @param v (..., j, dv) values
     * @param keep null, or a boolean mask broadcastable to (..., i, j), true = attend
     * @return (..., i, dv)
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray keep) {
        int rank = k.getShape().dimension();
        // in place on the fresh product (matMul's backward does not read its output): no extra (…, i, j) buffers
        NDArray sim = q.matMul(k.swapAxes(rank - 2, rank - 1));
        sim.muli(Tensors.scalar(sim, Math.pow(q.getShape().tail(), -0.5)));
        if (keep != null) {
            sim.addi(Tensors.maskBias(keep));
        }
        return sim.softmax(-1).matMul(v);
    }
}
