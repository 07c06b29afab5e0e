package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.TieBreak;
import org.junit.jupiter.api.Test;

/** {@link ConditionalRoutedAutoregressiveAttention} (spec colt5.md §2.9) against {@code routed_models/gen_fixtures.py}. */
class ConditionalRoutedAutoregressiveAttentionTest {

    /** The configuration of {@code ar_attention.safetensors}: 2 kv routes, rotary, windows of 4. */
    private static ConditionalRoutedAutoregressiveAttention routed() {
        return ConditionalRoutedAutoregressiveAttention.builder()
                .setDim(16)
                .setNumHeavyTokensQ(2)
                .setNumHeavyTokensKv(5)
                .optNumRoutedKv(2)
                .optLightDimHead(8)
                .optLightHeads(2)
                .optLightWindowSize(4)
                .optHeavyDimHead(8)
                .optHeavyHeads(4)
                .optRotaryEmb(true)
                .optRouterKwargs(CoordinateDescentRouter.builder().optEps(0.3))
                .build();
    }

    private static void assertFixture(NDManager manager, ConditionalRoutedAutoregressiveAttention block, String name) {
        RoutedModelFixtures fx = RoutedModelFixtures.read(manager, name);
        NDArray x = fx.get("x");
        block.initialize(manager, DataType.FLOAT32, x.getShape());
        fx.load(block);
        NDArray y = block.apply(new ParameterStore(manager, false), x, null, null, false, false);
        RoutedModelFixtures.assertClose(name, fx.get("y"), y);
    }

    @Test
    void routedWithTwoKvRoutesMatchesFixture() {
        try (NDManager manager = NDManager.newBaseManager()) {
            // n = 14 is padded to 16 (4 windows); batch 2: the reference would mix rows of the two kv routes
            assertFixture(manager, routed(), "ar_attention.safetensors");
        }
    }

    /**
     * Windows whose keys are mostly masked (query window m sees 4m of 16), router defaults: a kv cut falls between
     * the subnormal scores 7.1e−39 and 7.0e−45, which a clamped exp would tie (issue 14, see the fixture log).
     */
    @Test
    void fewValidKeysPerWindowMatchesFixture() {
        // the default tie break and the reference's plain top-k: no tie at the cut, so both must match the fixture
        for (TieBreak tieBreak : TieBreak.values()) {
            try (NDManager manager = NDManager.newBaseManager()) {
                ConditionalRoutedAutoregressiveAttention block = RoutedModelFixtures.fewTokenRouting(
                        ConditionalRoutedAutoregressiveAttention.builder(), tieBreak).setNumHeavyTokensQ(2)
                        .setNumHeavyTokensKv(3).optRotaryEmb(true).build();
                assertFixture(manager, block, "ar_attention_few_valid_keys.safetensors");
            }
        }
    }

    @Test
    void unroutedMatchesFixture() {
        try (NDManager manager = NDManager.newBaseManager()) {
            // Kq = heavy window and Kkv = padded length: every query and past token goes to the heavy branch
            ConditionalRoutedAutoregressiveAttention block = ConditionalRoutedAutoregressiveAttention.builder()
                    .setDim(16)
                    .setNumHeavyTokensQ(4)
                    .setNumHeavyTokensKv(16)
                    .optLightDimHead(8)
                    .optLightHeads(2)
                    .optLightWindowSize(3)
                    .optHeavyWindowSize(4)
                    .optHeavyDimHead(8)
                    .optHeavyHeads(2)
                    .optMultiplyKeysByScore(true)
                    .optRotaryEmb(true)
                    .build();
            assertFixture(manager, block, "ar_attention_unrouted.safetensors");
        }
    }

    /** Perturbs tokens from each cut on and checks that no output before the cut moves. */
    private static void assertCausal(ConditionalRoutedAutoregressiveAttention block, int... cuts) {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.randomNormal(new Shape(2, 14, 16));
            block.initialize(manager, DataType.FLOAT32, x.getShape());
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray y = block.apply(ps, x, null, null, false, false);
            for (int cut : cuts) {
                NDArray changed = x.duplicate();
                changed.set(new NDIndex(":, " + cut + ":"), manager.randomNormal(new Shape(2, 14 - cut, 16)).mul(5));
                NDArray y2 = block.apply(ps, changed, null, null, false, false);
                assertEquals(0.0, RoutedModelFixtures.maxAbsDiff(y.get(":, :" + cut), y2.get(":, :" + cut)), 1e-5,
                        "outputs before " + cut);
                assertTrue(RoutedModelFixtures.maxAbsDiff(y.get(":, " + cut + ":"), y2.get(":, " + cut + ":")) > 1e-3);
            }
        }
    }

    @Test
    void laterWindowsNeverChangeEarlierOutputs() {
        Engine.getInstance().setRandomSeed(21);
        // queries are routed by a top-Kq inside their heavy window, so causality holds window by window
        assertCausal(routed(), 4, 8, 12);
    }

    @Test
    void withEveryQueryHeavyLaterTokensNeverChangeEarlierOutputs() {
        Engine.getInstance().setRandomSeed(22);
        ConditionalRoutedAutoregressiveAttention block = ConditionalRoutedAutoregressiveAttention.builder()
                .setDim(16)
                .setNumHeavyTokensQ(4)
                .setNumHeavyTokensKv(5)
                .optNumRoutedKv(2)
                .optLightDimHead(8)
                .optLightHeads(2)
                .optLightWindowSize(4)
                .optHeavyDimHead(8)
                .optHeavyHeads(4)
                .optRotaryEmb(true)
                .build();
        assertCausal(block, 1, 3, 5, 6, 9, 13);
    }

    @Test
    void routingIndicesAreAbsolutePositions() {
        Engine.getInstance().setRandomSeed(23);
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedAutoregressiveAttention block = routed();
            NDArray x = manager.randomNormal(new Shape(2, 14, 16));
            block.initialize(manager, DataType.FLOAT32, x.getShape());
            RoutedOutput out = block.applyWithRouting(new ParameterStore(manager, false), x, null, null, false, false);
            assertEquals(new Shape(2, 3, 2), out.qIndices().getShape());
            assertEquals(new Shape(2, 3, 2, 5), out.kvIndices().getShape());
            long[] q = out.qIndices().toLongArray();
            for (int i = 0; i < q.length; i++) {
                long window = (i / 2) % 3 + 1;
                assertTrue(q[i] >= 4 * window && q[i] < 4 * window + 4, "query " + q[i] + " outside window " + window);
            }
            assertTrue(out.kvIndices().max().getLong() < 16);
        }
    }

    @Test
    void rejectsSequencesShorterThanTheHeavyWindow() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedAutoregressiveAttention block = routed();
            block.initialize(manager, DataType.FLOAT32, new Shape(1, 8, 16));
            ParameterStore ps = new ParameterStore(manager, false);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> block.apply(ps, manager.zeros(new Shape(1, 3, 16)), null, null, false, false));
            assertEquals("sequence length (3) must be >= heavyWindowSize (4); x has shape (1, 3, 16)", e.getMessage());
            // exactly one window: no past, the heavy branch is zero and the call succeeds
            assertEquals(new Shape(1, 4, 16),
                    block.apply(ps, manager.ones(new Shape(1, 4, 16)), null, null, false, false).getShape());
        }
    }
}
