package dev.condjl.colt5;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The keyword arguments of the attention building blocks: {@code dim}, {@code dim_head} (64) and {@code heads} (8);
 * and one option of ours, {@link #optAttentionPrecision}.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class MultiHeadBuilder<T extends MultiHeadBuilder<T>> {

    int dim;
    int dimHead = 64;
    int heads = 8;
    AttentionPrecision attentionPrecision = AttentionPrecision.INPUT;

    MultiHeadBuilder() {}

    /**
     * This builder as its concrete type.
     *
     * @return {@code this}
     */
    protected abstract T self();

    /**
     * Sets the model width (required).
     *
     * @param dim {@code > 0}
     * @return this builder
     */
    public T setDim(int dim) {
        this.dim = dim;
        return self();
    }

    /**
     * Sets the head dimension.
     *
     * @param dimHead default 64
     * @return this builder
     */
    public T optDimHead(int dimHead) {
        this.dimHead = dimHead;
        return self();
    }

    /**
     * Sets the number of heads.
     *
     * @param heads default 8
     * @return this builder
     */
    public T optHeads(int heads) {
        this.heads = heads;
        return self();
    }

    /**
     * Sets the precision of the fused attention, {@code softmax(q·kᵀ·dh^-0.5)·v} (see
     * {@link AttentionPrecision}): a reduced one converts q, k and v to 16 bits for that one op, which on a GPU
     * runs the flash kernels (at long sequences several times faster); the projections, norms and everything else
     * stay float32. Where the fused op cannot run in that precision (one warning) or the attention is composed
     * of DJL ops (a key-padding mask on the light branch), it runs in float32.
     *
     * @param attentionPrecision default {@link AttentionPrecision#INPUT} (float32, as the reference)
     * @return this builder
     */
    public T optAttentionPrecision(AttentionPrecision attentionPrecision) {
        this.attentionPrecision = Builders.required("attentionPrecision", attentionPrecision);
        return self();
    }

    /**
     * Checks the sizes.
     *
     * @throws IllegalArgumentException if a size is not positive
     */
    void validate() {
        Builders.positive("dim", dim);
        Builders.positive("dimHead", dimHead);
        Builders.positive("heads", heads);
    }
}
