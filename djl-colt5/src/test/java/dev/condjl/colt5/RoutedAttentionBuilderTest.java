package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link RoutedAttentionBuilder}: the routed self-attentions share its options and their defaults, which are the
 * same in the reference's three constructors (spec colt5.md §1.6–1.8).
 */
class RoutedAttentionBuilderTest {

    @Test
    void sharedOptionsDefaultAsInTheReference() {
        List<RoutedAttentionBuilder<?>> builders = List.of(ConditionalRoutedAttention.builder(),
                ConditionalRoutedImageAttention.builder(), ConditionalRoutedAutoregressiveAttention.builder());
        for (RoutedAttentionBuilder<?> b : builders) {
            String what = b.getClass().getName();
            // num_routed_kv, light_dim_head, light_heads, light_window_size, heavy_dim_head, heavy_heads
            assertEquals(List.of(1, 64, 8, 128, 64, 8), List.of(b.numRoutedKv, b.lightDimHead, b.lightHeads,
                    b.lightWindowSize, b.heavyDimHead, b.heavyHeads), what);
            // router_straight_through, multiply_keys_by_score, multiply_queries_by_score, use_null_q_tokens
            assertEquals(List.of(true, false, false, true), List.of(b.routerStraightThrough, b.multiplyKeysByScore,
                    b.multiplyQueriesByScore, b.useNullQTokens), what);
        }
    }
}
