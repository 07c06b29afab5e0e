package dev.condjl.topk;

/**
 * How a top-k chooses among equal scores. Coordinate-descent scores saturate at exactly 1.0, and underflow to exactly
 * 0.0 (like masked entries' scores), so the CoLT5 router's top-k often chooses among ties (spec colt5.md §2.13 items 1
 * and 2).
 */
public enum TieBreak {
    /**
     * Plain {@code topk} of the scores, as the reference does ({@code torch.topk}, sorted, largest first). Defined,
     * and equal to the reference's: the selected set wherever the k-th and (k+1)-th largest scores of a row differ,
     * and the order of unequal scores (descending; NaN counts as larger than every number). Arbitrary: which of the
     * scores tied at the cut are selected and how equal scores are ordered. That is whatever the engine's top-k
     * kernel returns; it differs between CPU and CUDA and between releases, and may pick a masked entry (score 0)
     * over a valid one whose score underflowed to 0.
     */
    REFERENCE,
    /**
     * A total order: score descending, then valid before masked, then raw score descending, then index ascending.
     * The order between unequal scores is exactly that of {@link #REFERENCE}, so the two select the same set wherever
     * the reference's selection is defined. Among equal scores a valid entry always wins over a masked one (a masked
     * entry is selected only when a row has fewer than k valid ones), then the larger raw score (for the router: the
     * larger token-routing similarity, which is what the unsaturated scores order by anyway, because coordinate
     * descent is monotone in the raw score), then the lower position. The result is the same on every device and
     * engine release. NaN counts as larger than every number (as in {@code torch.topk}) and all NaNs as equal. Costs
     * three sorts per row; rows are limited to 2^20 entries.
     */
    BY_INPUT
}
