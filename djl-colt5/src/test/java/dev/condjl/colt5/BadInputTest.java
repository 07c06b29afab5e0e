package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Bad input gets a clear exception, or the reference's defined behaviour. */
class BadInputTest {

    private static final int DIM = 8;

    private static void fails(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    private static ConditionalRoutedAttention.Builder attention() {
        return ConditionalRoutedAttention.builder().setDim(DIM).setNumHeavyTokensQ(4).setNumHeavyTokensKv(4)
                .optLightDimHead(4).optLightHeads(2).optLightWindowSize(16).optHeavyDimHead(4).optHeavyHeads(6);
    }

    @Test
    void headsNotDivisibleByRoutes() {
        fails("heavyHeads (6) must be divisible by numRoutedKv (4)", () -> attention().optNumRoutedKv(4).build());
        fails("heads (8) must be divisible by kvRoutingTokens (3)", () -> ConditionalRoutedCrossAttention.builder()
                .setDim(DIM).setNumTokensQ(2).setNumTokensKv(2).optKvRoutingTokens(3).build());
        fails("heavyHeads (6) must be divisible by numRoutedKv (4)",
                () -> ReferenceConfigs.build("ConditionalRoutedAttention", Map.of("dim", 8,
                        "num_heavy_tokens_q", 2, "num_heavy_tokens_kv", 2, "heavy_heads", 6, "num_routed_kv", 4)));
    }

    @Test
    void sequenceShorterThanWindowIsPaddedAsInTheReference() {
        try (NDManager m = NDManager.newBaseManager()) {
            ConditionalRoutedAttention attn = attention().optHeavyHeads(4).build();
            attn.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            NDArray out = attn.apply(new ParameterStore(m, false), m.randomNormal(new Shape(2, 3, DIM)), null, null,
                    null, false);
            assertEquals(new Shape(2, 3, DIM), out.getShape());
            assertTrue(out.isNaN().any().getBoolean() == false);
        }
    }

    @Test
    void sequenceShorterThanRouteBlock() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter router = CoordinateDescentRouter.builder().setDim(DIM).optRouteBlockSize(16)
                    .build();
            router.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            fails("sequence length (12) must be >= routeBlockSize (16)",
                    () -> router.route(ps, m.randomNormal(new Shape(1, 12, DIM)), 4, null, false));
            fails("tokens per route block ceil(20 / 1) = 20 must be <= routeBlockSize (16)",
                    () -> router.route(ps, m.randomNormal(new Shape(1, 24, DIM)), 20, null, false));
        }
    }

    @Test
    void moreRoutedTokensThanTokensTakesTheNoRoutingPath() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter router = CoordinateDescentRouter.builder().setDim(DIM).optNumRoutingTokens(2)
                    .build();
            router.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            NDArray x = m.randomNormal(new Shape(2, 5, DIM));
            RouterReturn r = router.route(new ParameterStore(m, false), x, 9, null, false);
            assertNull(r.indices());
            assertEquals(new Shape(2, 2, 5), r.scores().getShape());
            assertEquals(10f, r.scores().get(0).sum().getFloat());
            assertEquals(0f, r.routedTokens().get(":, 1").sub(x).abs().max().getFloat());

            ConditionalRoutedFeedForward ff = ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(9)
                    .build();
            ff.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            // n <= K: every token is heavy, the same as routing all n tokens (K = n)
            NDArray all = ff.apply(ps, x, null, null, false);
            NDArray routedAll = ff.apply(ps, x, null, 5, false);
            assertTrue(all.sub(routedAll).abs().max().getFloat() < 1e-6);
        }
    }

    @Test
    void wrongRankShapeOrDtype() {
        try (NDManager m = NDManager.newBaseManager()) {
            ConditionalRoutedFeedForward ff = ConditionalRoutedFeedForward.builder().setDim(DIM).setNumHeavyTokens(2)
                    .build();
            ff.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            fails("x must have shape (batch, seq, 8), got (5, 8)",
                    () -> ff.apply(ps, m.randomNormal(new Shape(5, DIM)), null, null, false));
            fails("x must have last dimension 8, got shape (1, 5, 7)",
                    () -> ff.apply(ps, m.randomNormal(new Shape(1, 5, 7)), null, null, false));
            NDArray x = m.randomNormal(new Shape(2, 5, DIM));
            fails("mask must be a boolean mask of shape (2, 5)",
                    () -> ff.apply(ps, x, m.ones(new Shape(2, 5)), null, false));
            fails("mask must be a boolean mask of shape (2, 5)",
                    () -> ff.apply(ps, x, m.ones(new Shape(2, 4)).gt(0), null, false));
            fails("num_tokens (0) must be >= 1", () -> ff.apply(ps, x, null, 0, false));
        }
    }

    @Test
    void routingTokensOfTheWrongKind() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter learned = CoordinateDescentRouter.builder().setDim(DIM).optNumRoutingTokens(2)
                    .optLearnedRoutingTokens(true).build();
            learned.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(2, 10, DIM));
            fails("routing_tokens are required", () -> learned.route(ps, x, 3, null, false));
            fails("routing_tokens must have shape (2, 2, 8)",
                    () -> learned.route(ps, x, 3, null, m.ones(new Shape(2, DIM)), false, false, false));
            fails("random_route needs a mask",
                    () -> learned.route(ps, x, 3, null, m.ones(new Shape(2, 2, DIM)), true, false, false));
            fails("router_kwargs learnedRoutingTokens is not supported", () -> ConditionalRoutedFeedForward.builder()
                    .setDim(DIM).setNumHeavyTokens(2)
                    .optRouterKwargs(CoordinateDescentRouter.builder().optLearnedRoutingTokens(true)).build());
        }
    }

    @Test
    void configsRejectUnknownAndMissingArguments() {
        fails("unknown arguments [num_heavy_tokenz]", () -> ReferenceConfigs.build("ConditionalRoutedFeedForward",
                Map.of("dim", 8, "num_heavy_tokens", 2, "num_heavy_tokenz", 3)));
        fails("missing required argument 'num_heavy_tokens'",
                () -> ReferenceConfigs.build("ConditionalRoutedFeedForward", Map.of("dim", 8)));
        fails("unknown module 'Nope'", () -> ReferenceConfigs.build("Nope", Map.of()));
        fails("router_kwargs: unknown arguments [epz]", () -> ReferenceConfigs.build("ConditionalRoutedFeedForward",
                Map.of("dim", 8, "num_heavy_tokens", 2, "router_kwargs", Map.of("epz", 1.0))));
        Block ok = ReferenceConfigs.build("ConditionalRoutedFeedForward", Map.of("dim", 8, "num_heavy_tokens", 2,
                "use_triton", true, "router_kwargs", Map.of("eps", 1.0, "tie_break", "by_input")));
        assertEquals(11, StateDicts.parameters(ok).size());
    }
}
