package dev.condjl.colt5;

/**
 * {@link RoutedAttentionBuilder}'s options plus the routed-token counts of the routed attention modules, the
 * reference's {@code num_heavy_tokens_q} (Kq) and {@code num_heavy_tokens_kv} (Kkv) ({@code ConditionalRoutedAttention},
 * {@code ConditionalRoutedImageAttention}, {@code ConditionalRoutedAutoregressiveAttention}). The windowed modules
 * count both per window; each module's class comment says which window. {@code ConditionalRoutedTransformerBlock}
 * names its counts {@code num_heavy_attn_tokens_*} and so sets them itself.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class RoutedTokensBuilder<T extends RoutedTokensBuilder<T>> extends RoutedAttentionBuilder<T> {

    int numHeavyTokensQ;
    int numHeavyTokensKv;

    RoutedTokensBuilder() {}

    /**
     * Sets Kq, the queries routed to the heavy attention (required); per window in the image and autoregressive
     * attentions, where a Kq of at least the window's tokens routes every query.
     *
     * @param numHeavyTokensQ {@code >= 1}
     * @return this builder
     */
    public T setNumHeavyTokensQ(int numHeavyTokensQ) {
        this.numHeavyTokensQ = numHeavyTokensQ;
        return self();
    }

    /**
     * Sets Kkv, the keys/values routed per route (required); per window in the image attention, per query window
     * from the earlier windows in the autoregressive attention.
     *
     * @param numHeavyTokensKv {@code >= 1}
     * @return this builder
     */
    public T setNumHeavyTokensKv(int numHeavyTokensKv) {
        this.numHeavyTokensKv = numHeavyTokensKv;
        return self();
    }

    /**
     * Checks the shared options and the routed-token counts.
     *
     * @throws IllegalArgumentException as {@link RoutedAttentionBuilder#validate}, or if Kq or Kkv is not positive
     */
    @Override
    void validate() {
        super.validate();
        Builders.positive("numHeavyTokensQ", numHeavyTokensQ);
        Builders.positive("numHeavyTokensKv", numHeavyTokensKv);
    }
}
