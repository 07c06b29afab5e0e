package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;

/**
 * A routed block's output together with its routers' choices, for routing maps and statistics (forward param
 * {@code return_routing}, or the blocks' {@code applyWithRouting}).
 *
 * <p>Indices are int64 positions in the block's input sequence: {@code (b, K)}, or {@code (b, R, K)} for several kv
 * routes. A router that did not route ({@code n <= K}) reports every position, {@code arange(n)} broadcast to
 * {@code (b, [R,] n)}. Fields a block does not have are null.
 *
 * @param output the block's output
 * @param qIndices the query router's choice (attention blocks)
 * @param kvIndices the key/value router's choice (attention blocks)
 * @param ffIndices the feed-forward router's choice (feed-forward blocks)
 */
public record RoutedOutput(NDArray output, NDArray qIndices, NDArray kvIndices, NDArray ffIndices) {

    /**
     * The fields as a named list: {@code output}, then {@code q_indices}, {@code kv_indices}, {@code ff_indices}
     * (those present).
     *
     * @return the list
     */
    public NDList toNDList() {
        NDList out = new NDList();
        add(out, output, "output");
        add(out, qIndices, "q_indices");
        add(out, kvIndices, "kv_indices");
        add(out, ffIndices, "ff_indices");
        return out;
    }

    private static void add(NDList out, NDArray array, String name) {
        if (array != null) {
            array.setName(name);
            out.add(array);
        }
    }
}
