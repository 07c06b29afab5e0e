package dev.condjl.topk;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import dev.condjl.cuda.CondjlOps;

/**
 * The router's selection (spec colt5.md §2.5): the {@code k} best entries of each row of the soft top-k, with
 * straight-through values.
 *
 * <pre>
 *   c       = coorDescent(s, softK, mask)
 *   indices = topk(c, k)                           (ties as {@link TopK#select} breaks them, raw key s)
 *   values  = c[indices] + stopGradient(1 − c[indices])     1.0 in value, with the gradient of c[indices]
 * </pre>
 *
 * <p>Where the fused backend solves inside a {@code GradientCollector} and the tie break is
 * {@link TieBreak#BY_INPUT} with a native top-k, the straight-through values come out of the top-k kernel
 * ({@link CondjlOps#topKByInputWithGates}) and only the zero-valued gradient path of {@code c} is gathered and added:
 * three ops and one autograd node fewer than the composition above, with the same values and gradients bit for bit.
 */
public final class StraightThroughSelection {

    private StraightThroughSelection() {}

    /**
     * Selects the {@code k} best entries of each row of the soft top-k of {@code s}.
     *
     * @param s (..., n) floating scores
     * @param softK the soft top-k's {@code k}, {@code > 0}
     * @param mask null, or a boolean (..., n) mask, true = valid
     * @param k entries per row, {@code 1 <= k <= n}
     * @param options the soft top-k's iterations, ε schedule and backend
     * @param tieBreak how equal soft scores are ordered
     * @return [values (..., k), indices (..., k) int64], sorted by soft score descending; attached to {@code s}'s
     *     manager
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static NDList select(NDArray s, double softK, NDArray mask, int k, CoordinateDescent.Options options,
            TieBreak tieBreak) {
        if (tieBreak == null) {
            throw new IllegalArgumentException("tieBreak must not be null");
        }
        return Scoped.compute(() -> {
            NDList parts = tieBreak == TieBreak.BY_INPUT && CondjlOps.supportsTopKByInput(s)
                    ? CoordinateDescent.fusedParts(s, softK, mask, options)
                    : null;
            if (parts != null) {
                TopK.checkK(k, s.getShape());
                NDList selected = CondjlOps.topKByInputWithGates(parts.get(0), s, mask, k);
                NDArray indices = selected.get(0);
                return new NDList(selected.get(1).add(parts.get(1).gather(indices, -1)), indices);
            }
            NDArray scores = CoordinateDescent.solve(s, softK, mask, options);
            NDList selected = TopK.select(scores, s, mask, k, tieBreak);
            return new NDList(straightThrough(selected.get(0)), selected.get(1));
        }, s, mask);
    }

    /**
     * {@code c + stopGradient(1 − c)}: exactly 1.0 in value where {@code c} is in [0, 1] (float32 and float16 round
     * {@code 1 − c} by less than half an ulp of 1), with the gradient of {@code c}.
     *
     * @param c any floating array
     * @return an array of {@code c}'s shape, in {@code c}'s manager
     */
    public static NDArray straightThrough(NDArray c) {
        // 1 − c joins c's manager (a result would belong to the cached constant's)
        NDArray rest = ConstantCache.SHARED.scalar(c, 1, c.getDataType()).sub(c);
        rest.attach(c.getManager());
        return c.add(rest.stopGradient());
    }
}
