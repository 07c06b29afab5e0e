package dev.condjl.topk;

/**
 * How a top-k chooses among equal scores. Coordinate-descent scores saturate at exactly 1.0, so the CoLT5 router's
 * top-k often chooses among ties (spec colt5.md §2.13 item 1).
 */
public enum TieBreak {
    /**
     * Plain {@code topk} of the scores, as the reference does: the order among equal scores is whatever the engine's
     * top-k kernel returns (it differs between CPU and CUDA and between releases).
     */
    REFERENCE,
    /**
     * A total order: score descending, then raw score descending, then index ascending. Equal scores are won by the
     * larger raw score (for the router: the larger token-routing similarity, which is what the unsaturated scores
     * order by anyway, because coordinate descent is monotone in the raw score), and fully equal entries by the lower
     * position. The order between unequal scores is exactly that of {@link #REFERENCE}. NaN counts as larger than
     * every number (as in {@code torch.topk}) and all NaNs as equal. Costs three sorts per row; rows are limited to
     * 2^20 entries.
     */
    BY_INPUT
}
