package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * What {@link CoordinateDescentRouter} returns (the reference's {@code RouterReturn}).
 *
 * <p>With a route dimension ({@code R > 1} routing tokens or {@code keep_one_route_dim}) the shapes are
 * {@code indices (b, R, K)}, {@code scores (b, R, K)}, {@code routedTokens (b, R, K, d)}, {@code routedMask (b, R,
 * K)}; otherwise the R axis is absent. Without routing ({@code n <= K}) {@code indices} is null, {@code scores} are
 * ones over all {@code n} tokens and {@code routedTokens}/{@code routedMask} are the inputs (repeated over R).
 *
 * @param indices int64 positions of the routed tokens in the input sequence, sorted by score descending; null when
 *     not routed
 * @param scores the routed tokens' normalized scores: exactly 1.0 forward with straight-through (0 for masked
 *     tokens), else the coordinate-descent values in [0, 1]; differentiable
 * @param routedTokens the routed tokens, gathered from the input
 * @param routedMask the routed tokens' mask entries, or null when no mask was given
 * @param tokenIndex the int64 index {@code routedTokens} were gathered with, {@code indices} as (b, R·K) broadcast
 *     over the token width: (b, R·K, d), a view; for scattering outputs of the routed tokens back (R = 1) without
 *     building it again. Null when not routed
 */
public record RouterReturn(
        NDArray indices, NDArray scores, NDArray routedTokens, NDArray routedMask, NDArray tokenIndex) {

    /**
     * Whether tokens were selected (the sequence was longer than the number of tokens to route).
     *
     * @return {@code indices != null}
     */
    public boolean isRouted() {
        return indices != null;
    }

    /**
     * The routed positions, or every position when not routed.
     *
     * @return {@link #indices}, or int64 {@code arange(n)} broadcast to the scores' shape {@code (b, [R,] n)}
     */
    public NDArray indicesOrAll() {
        if (indices != null) {
            return indices;
        }
        Shape s = scores.getShape();
        return scores.getManager().arange(0, (int) s.tail(), 1, DataType.INT64).broadcast(s);
    }

    /**
     * The fields as a named list: {@code indices} (if routed), {@code scores}, {@code routed_tokens},
     * {@code routed_mask} (if present).
     *
     * @return the list
     */
    public NDList toNDList() {
        NDList out = new NDList();
        if (indices != null) {
            out.add(named(indices, "indices"));
        }
        out.add(named(scores, "scores"));
        out.add(named(routedTokens, "routed_tokens"));
        if (routedMask != null) {
            out.add(named(routedMask, "routed_mask"));
        }
        return out;
    }

    /** A named view, so that naming never renames a caller's array (unrouted tokens are the input itself). */
    private static NDArray named(NDArray array, String name) {
        NDArray view = array.reshape(array.getShape());
        view.setName(name);
        return view;
    }
}
