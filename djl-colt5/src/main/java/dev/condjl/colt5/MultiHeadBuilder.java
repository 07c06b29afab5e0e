package dev.condjl.colt5;

/**
 * The keyword arguments of the attention building blocks: {@code dim}, {@code dim_head} (64) and {@code heads} (8).
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class MultiHeadBuilder<T extends MultiHeadBuilder<T>> {

    int dim;
    int dimHead = 64;
    int heads = 8;

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
