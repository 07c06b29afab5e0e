package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/** Head splitting and merging: {@code (b, n, (h d))} to {@code (b, h, n, d)} and back. */
final class MultiHead {

    private MultiHead() {}

    /**
     * Chunks a fused projection and splits each chunk into heads.
     *
     * @param fused (b, n, chunks·h·d), e.g. the output of {@code to_qkv} laid out {@code [Q | K | V]}
     * @param chunks number of equal chunks
     * @param heads heads per chunk
     * @return {@code chunks} arrays of shape (b, h, n, d)
     */
    static NDList split(NDArray fused, int chunks, int heads) {
        long b = fused.getShape().get(0);
        long n = fused.getShape().get(1);
        // all chunks' heads at once, (b, chunks·h, n, d), then cut: the same views as cutting first, in 3 ops, not 7
        NDArray allHeads = fused.reshape(b, n, (long) chunks * heads, -1).transpose(0, 2, 1, 3);
        return chunks == 1 ? new NDList(allHeads) : allHeads.split(chunks, 1);
    }

    /**
     * Merges heads.
     *
     * @param x (b, h, n, d)
     * @return (b, n, h·d)
     */
    static NDArray merge(NDArray x) {
        long b = x.getShape().get(0);
        long n = x.getShape().get(2);
        return x.transpose(0, 2, 1, 3).reshape(b, n, -1);
    }
}
