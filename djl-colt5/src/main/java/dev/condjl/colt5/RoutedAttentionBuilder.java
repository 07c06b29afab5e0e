package dev.condjl.colt5;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The keyword arguments every routed self-attention takes on top of {@link RoutedBuilder}'s: kv routes, the light
 * and heavy branches' heads, score multiplication and null query tokens ({@code ConditionalRoutedAttention},
 * {@code ConditionalRoutedImageAttention}, {@code ConditionalRoutedAutoregressiveAttention},
 * {@code ConditionalRoutedTransformerBlock}). The routed-token counts are {@link RoutedTokensBuilder}'s, or the
 * transformer block's own.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class RoutedAttentionBuilder<T extends RoutedAttentionBuilder<T>> extends RoutedBuilder<T> {

    int numRoutedKv = 1;
    int lightDimHead = 64;
    int lightHeads = 8;
    int lightWindowSize = 128;
    int heavyDimHead = 64;
    int heavyHeads = 8;
    boolean multiplyKeysByScore;
    boolean multiplyQueriesByScore;
    boolean useNullQTokens = true;
    AttentionPrecision attentionPrecision = AttentionPrecision.INPUT;

    RoutedAttentionBuilder() {}

    /**
     * Sets the number of kv routes R; heavy heads are split evenly between them.
     *
     * @param numRoutedKv default 1
     * @return this builder
     */
    public T optNumRoutedKv(int numRoutedKv) {
        this.numRoutedKv = numRoutedKv;
        return self();
    }

    /**
     * Sets the light branch's head dimension.
     *
     * @param lightDimHead default 64
     * @return this builder
     */
    public T optLightDimHead(int lightDimHead) {
        this.lightDimHead = lightDimHead;
        return self();
    }

    /**
     * Sets the light branch's heads.
     *
     * @param lightHeads default 8
     * @return this builder
     */
    public T optLightHeads(int lightHeads) {
        this.lightHeads = lightHeads;
        return self();
    }

    /**
     * Sets the light window; its meaning is the module's (a sequence window, a causal window, a w×w image window).
     *
     * @param lightWindowSize default 128
     * @return this builder
     */
    public T optLightWindowSize(int lightWindowSize) {
        this.lightWindowSize = lightWindowSize;
        return self();
    }

    /**
     * Sets the heavy branch's head dimension.
     *
     * @param heavyDimHead default 64
     * @return this builder
     */
    public T optHeavyDimHead(int heavyDimHead) {
        this.heavyDimHead = heavyDimHead;
        return self();
    }

    /**
     * Sets the heavy branch's heads.
     *
     * @param heavyHeads default 8, divisible by {@code numRoutedKv}
     * @return this builder
     */
    public T optHeavyHeads(int heavyHeads) {
        this.heavyHeads = heavyHeads;
        return self();
    }

    /**
     * Whether heavy keys are scaled by the kv scores too.
     *
     * @param multiplyKeysByScore default false
     * @return this builder
     */
    public T optMultiplyKeysByScore(boolean multiplyKeysByScore) {
        this.multiplyKeysByScore = multiplyKeysByScore;
        return self();
    }

    /**
     * Whether heavy queries are scaled by the query scores before attention.
     *
     * @param multiplyQueriesByScore default false
     * @return this builder
     */
    public T optMultiplyQueriesByScore(boolean multiplyQueriesByScore) {
        this.multiplyQueriesByScore = multiplyQueriesByScore;
        return self();
    }

    /**
     * Whether unrouted queries get the learned {@code null_q_token} (else 0) as heavy output.
     *
     * @param useNullQTokens default true
     * @return this builder
     */
    public T optUseNullQTokens(boolean useNullQTokens) {
        this.useNullQTokens = useNullQTokens;
        return self();
    }

    /**
     * Sets the precision of the light and heavy branches' fused attention, as
     * {@link MultiHeadBuilder#optAttentionPrecision} does for one attention.
     *
     * @param attentionPrecision default {@link AttentionPrecision#INPUT} (float32, as the reference)
     * @return this builder
     */
    public T optAttentionPrecision(AttentionPrecision attentionPrecision) {
        this.attentionPrecision = Builders.required("attentionPrecision", attentionPrecision);
        return self();
    }

    /**
     * Checks the shared options.
     *
     * @throws IllegalArgumentException if {@code dim} or {@code numRoutedKv} is not positive, or heavy heads are not
     *     divisible by the kv routes
     */
    void validate() {
        Builders.positive("dim", dim);
        Builders.positive("numRoutedKv", numRoutedKv);
        Builders.divisible("heavyHeads", heavyHeads, "numRoutedKv", numRoutedKv);
    }

    /**
     * The heavy branch.
     *
     * @return {@code Attention(dim, heavyDimHead, heavyHeads, multiplyKeysByScore)} in {@code attentionPrecision}
     */
    Attention heavyAttention() {
        return heavyBranch(Attention.builder()
                .setDim(dim)
                .optDimHead(heavyDimHead)
                .optHeads(heavyHeads)
                .optMultiplyKeysByScore(multiplyKeysByScore)
                .optAttentionPrecision(attentionPrecision)
                .build());
    }
}
