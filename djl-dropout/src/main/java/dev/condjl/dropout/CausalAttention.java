package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;

/**
 * Causal multi-head scaled dot-product attention over a fused {@code [q | k | v]} projection, as PyTorch's
 * {@code F.scaled_dot_product_attention(q, k, v, is_causal=True)} after yif-AI's {@code split} and head reshape.
 */
public final class CausalAttention {

    /** Added to the scores of future positions; its exponential underflows to exactly 0 in fp32. */
    private static final float MASKED = -1e9f;

    private CausalAttention() {}

    /**
     * {@code softmax(q kᵀ / √(C/H) + causal) v} per head, heads merged back.
     *
     * @param qkv (B, T, 3C): q, k and v side by side on the last axis, each (B, T, C) split into H heads of C/H
     * @param numHeads H; must divide C
     * @param dropoutRate dropout on the attention probabilities, applied only in training
     * @param training true for a training forward pass
     * @return (B, T, C) attention values; position t attends to positions ≤ t only
     * @throws IllegalArgumentException if the last axis is not 3C with C divisible by numHeads
     */
    public static NDArray attend(NDArray qkv, int numHeads, float dropoutRate, boolean training) {
        Shape shape = qkv.getShape();
        long b = shape.get(0);
        long t = shape.get(1);
        long c = shape.get(2) / 3;
        if (shape.dimension() != 3 || shape.get(2) % 3 != 0 || c % numHeads != 0) {
            throw new IllegalArgumentException(
                    "qkv must be (B, T, 3C) with C divisible by numHeads (" + numHeads + "), got " + shape);
        }
        long headSize = c / numHeads;
        NDList parts = qkv.split(3, 2);
        NDArray q = parts.get(0).reshape(b, t, numHeads, headSize).transpose(0, 2, 1, 3);
        NDArray kT = parts.get(1).reshape(b, t, numHeads, headSize).transpose(0, 2, 3, 1);
        NDArray v = parts.get(2).reshape(b, t, numHeads, headSize).transpose(0, 2, 1, 3);
        NDArray sim = q.matMul(kT);
        NDArray scores = sim.mul(Scalars.of(sim, 1.0 / Math.sqrt(headSize))).add(futureMask(qkv.getManager(), t));
        NDArray probs = scores.softmax(-1);
        if (training && dropoutRate > 0f) {
            probs = Dropout.dropout(probs, dropoutRate, true).head();
        }
        return probs.matMul(v).transpose(0, 2, 1, 3).reshape(b, t, c);
    }

    /** (T, T) additive mask: 0 where key ≤ query, {@link #MASKED} where the key lies in the future. */
    private static NDArray futureMask(NDManager manager, long t) {
        NDArray position = manager.arange((int) t);
        NDArray future = position.expandDims(0).gt(position.expandDims(1)).toType(DataType.FLOAT32, false);
        return future.mul(Scalars.of(future, MASKED));
    }
}
