package dev.condjl.integration.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.condjl.colt5.ConditionalRoutedTransformerBlock;
import dev.condjl.dropout.Parametrized;
import dev.condjl.dropout.WeightDropout;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Parametrizing a CoLT5 block by the names users see, and what {@code registerAll} covers by default. */
class ParametrizedNamesTest {

    private static ConditionalRoutedTransformerBlock block(NDManager manager) {
        ConditionalRoutedTransformerBlock block = ConditionalRoutedTransformerBlock.builder().setDim(16)
                .setNumHeavyAttnTokensQ(4).setNumHeavyAttnTokensKv(4).setNumHeavyFfTokens(4).build();
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 8, 16));
        return block;
    }

    @Test
    void registersByStateDictName() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedTransformerBlock block = block(manager);
            String name = "conditional_attn.heavy_attn.to_q.weight";
            WeightDropout dropout = new WeightDropout(0.1f);
            Parametrized wrapped = Parametrized.wrap(block).register(name, dropout);
            String djlName = block.getParameters().stream()
                    .filter(p -> p.getValue() == StateDicts.parameters(block).get(name))
                    .findFirst().orElseThrow().getKey();
            assertTrue(djlName.contains("heavy_attn") && !djlName.equals(name), djlName);
            assertEquals(List.of(dropout), wrapped.getParametrizations(djlName));
        }
    }

    @Test
    void registerAllLeavesRoutingTokensNullKvNormsAndBiasesAlone() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedTransformerBlock block = block(manager);
            Parametrized wrapped = Parametrized.wrap(block).registerAll(new WeightDropout(0.1f, 2));
            Set<String> names = StateDicts.parameters(block).keySet();
            List<String> covered = names.stream().filter(n -> !wrapped.getParametrizations(n).isEmpty()).toList();
            List<String> skipped = names.stream().filter(n -> wrapped.getParametrizations(n).isEmpty()).toList();
            assertTrue(covered.contains("conditional_attn.heavy_attn.to_q.weight"), covered.toString());
            assertTrue(covered.contains("conditional_ff.heavy_ff.1.weight"), covered.toString());
            assertTrue(covered.stream().allMatch(n -> n.endsWith(".weight")), covered.toString());
            for (String left : List.of("conditional_attn.q_router.routing_token",
                    "conditional_attn.kv_router.routing_token", "conditional_ff.router.routing_token",
                    "conditional_attn.heavy_attn.null_kv")) {
                assertTrue(skipped.contains(left), left + " must not be covered; skipped: " + skipped);
            }
            assertTrue(skipped.stream().noneMatch(n -> n.endsWith("to_q.weight") || n.endsWith("to_kv.weight")),
                    skipped.toString());
            assertTrue(skipped.stream().filter(n -> n.endsWith(".bias")).count() > 0, skipped.toString());
        }
    }
}
