package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.TieBreak;
import ai.djl.util.PairList;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.Arrays;
import java.util.Set;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Router properties of spec colt5.md §2.5 that the fixtures cannot pin down: ties, straight-through, random route. */
class RouterTest {

    private static final int DIM = 8;

    private static CoordinateDescentRouter router(NDManager m, CoordinateDescentRouter.Builder b) {
        CoordinateDescentRouter r = b.setDim(DIM).build();
        r.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
        return r;
    }

    /** Large similarities saturate many scores at exactly 1.0; BY_INPUT then picks the top-K raw similarities. */
    @Test
    void byInputTieBreakSelectsTopRawSimilarity() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(11);
            CoordinateDescentRouter r = router(m, CoordinateDescentRouter.builder().optTieBreak(TieBreak.BY_INPUT));
            NDArray x = m.randomNormal(new Shape(3, 40, DIM)).mul(10);
            ParameterStore ps = new ParameterStore(m, false);
            RouterReturn out = r.route(ps, x, 5, null, false);
            NDArray token = StateDicts.parameters(r).get("routing_token").getArray();
            NDArray sim = x.matMul(token.transpose()).squeeze(-1);
            for (int row = 0; row < 3; row++) {
                long[] expected = sim.get(row).argSort(0, false).get(":5").toLongArray();
                long[] actual = out.indices().get(row).toLongArray();
                Arrays.sort(expected);
                Arrays.sort(actual);
                assertArrayEquals(expected, actual, "row " + row);
            }
        }
    }

    /**
     * Ties at 0.0 between valid and masked tokens (spec colt5.md §2.13 item 2), router defaults otherwise: 5 valid
     * tokens with similarity 10..12 take the weight, 3 valid ones at -20..-22 underflow to exactly 0, and the 8 masked
     * ones (similarity 40) score 0 too. K = 6 cuts among those zeros. The default tie break routes the valid token
     * with the higher similarity, never a masked one; the reference's plain top-k only guarantees the first five.
     */
    @Test
    void defaultTieBreakNeverRoutesAMaskedTokenTiedWithAValidOne() {
        try (NDManager m = NDManager.newBaseManager()) {
            float[] sims = {10, -20, 40, 10.5f, 40, -21, 11, 40, 40, 11.5f, -22, 40, 12, 40, 40, 40};
            boolean[] valid = new boolean[16];
            float[] x = new float[16 * DIM];
            for (int j = 0; j < 16; j++) {
                x[j * DIM] = sims[j];
                valid[j] = sims[j] < 40;
            }
            NDArray tokens = m.create(x).reshape(1, 16, DIM);
            NDArray mask = m.create(valid).reshape(1, 16);
            NDArray u = m.create(new float[DIM]);
            u.set(new ai.djl.ndarray.index.NDIndex("0"), 1f);
            u = u.reshape(1, DIM);
            ParameterStore ps = new ParameterStore(m, false);
            for (TieBreak tieBreak : new TieBreak[] {null, TieBreak.REFERENCE}) {
                CoordinateDescentRouter.Builder b = CoordinateDescentRouter.builder().optLearnedRoutingTokens(true);
                CoordinateDescentRouter r = router(m, tieBreak == null ? b : b.optTieBreak(tieBreak));
                RouterReturn out = r.route(ps, tokens, 6, mask, u, false, false, false);
                long[] idx = out.indices().toLongArray();
                long[] top5 = Arrays.copyOf(idx, 5);
                Arrays.sort(top5);
                assertArrayEquals(new long[] {0, 3, 6, 9, 12}, top5, tieBreak + ": the five with weight");
                if (tieBreak == null) {
                    assertEquals(1, idx[5], "default: the valid zero with the highest similarity");
                    assertTrue(out.routedMask().getBoolean(0, 5));
                    assertEquals(1f, out.scores().getFloat(0, 5), "straight-through: a valid selection scores 1");
                }
            }
            RouterReturn soft = router(m, CoordinateDescentRouter.builder().optLearnedRoutingTokens(true)
                    .optStraightThrough(false)).route(ps, tokens, 6, mask, u, false, false, false);
            assertEquals(0f, soft.scores().getFloat(0, 5), "the sixth score underflowed to exactly 0: a tie");
        }
    }

    private static void assertArrayEquals(long[] expected, long[] actual, String message) {
        assertEquals(Arrays.toString(expected), Arrays.toString(actual), message);
    }

    /**
     * A router's own single token (scores as one matrix-vector product) routes like the same token supplied as
     * learned routing tokens (the general path), with and without cosine routing: same tokens, and the same
     * gradients of the input and of the token.
     */
    @Test
    void ownTokenRoutesLikeTheSameTokenSupplied() {
        for (boolean cosine : new boolean[] {false, true}) {
            try (NDManager m = NDManager.newBaseManager()) {
                Engine.getInstance().setRandomSeed(13);
                // ε = 1 keeps most scores below saturation, where they carry a gradient
                CoordinateDescentRouter own =
                        router(m, CoordinateDescentRouter.builder().optEps(1).optCosineSimRouting(cosine));
                CoordinateDescentRouter learned = router(m, CoordinateDescentRouter.builder().optEps(1)
                        .optCosineSimRouting(cosine).optLearnedRoutingTokens(true));
                NDArray token = StateDicts.parameters(own).get("routing_token").getArray();
                NDArray x = m.randomNormal(new Shape(2, 24, DIM));
                NDArray g = m.randomNormal(new Shape(2, 5));
                ParameterStore ps = new ParameterStore(m, false);
                NDArray xOwn = x.duplicate();
                NDArray xLearned = x.duplicate();
                NDArray supplied = token.broadcast(2, DIM).duplicate();
                xOwn.setRequiresGradient(true);
                xLearned.setRequiresGradient(true);
                supplied.setRequiresGradient(true);
                RouterReturn a;
                RouterReturn b;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    a = own.route(ps, xOwn, 5, null, true);
                    b = learned.route(ps, xLearned, 5, null, supplied, false, false, true);
                    gc.backward(a.scores().mul(g).sum().add(b.scores().mul(g).sum()));
                }
                assertArrayEquals(b.indices().toLongArray(), a.indices().toLongArray(), "cosine " + cosine);
                assertClose(xLearned.getGradient(), xOwn.getGradient(), "cosine " + cosine + ": dx");
                assertClose(supplied.getGradient().sum(new int[] {0}, true), token.getGradient(),
                        "cosine " + cosine + ": d token");
            }
        }
    }

    private static void assertClose(NDArray expected, NDArray actual, String message) {
        float scale = expected.abs().max().getFloat();
        assertTrue(scale > 1e-3f, message + ": a gradient of " + scale);
        float diff = expected.sub(actual).abs().max().getFloat();
        assertTrue(diff <= 1e-5f * scale, message + ": max |diff| " + diff + " of " + scale);
    }

    /** Straight-through scores are exactly 1.0 forward, masked selections exactly 0. */
    @Test
    void straightThroughScoresAreExactlyOneAndMaskedZero() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter r = router(m, CoordinateDescentRouter.builder());
            NDArray x = m.randomNormal(new Shape(2, 10, DIM));
            // row 1 has only 3 valid tokens, fewer than K = 5
            NDArray mask = m.ones(new Shape(1, 10)).gt(0).concat(m.arange(10).lt(3).expandDims(0), 0);
            RouterReturn out = r.route(new ParameterStore(m, false), x, 5, mask, false);
            float[] row0 = out.scores().get(0).toFloatArray();
            for (float s : row0) {
                assertEquals(1.0f, s);
            }
            float[] row1 = out.scores().get(1).toFloatArray();
            boolean[] valid = out.routedMask().get(1).toBooleanArray();
            int ones = 0;
            for (int j = 0; j < 5; j++) {
                assertEquals(valid[j] ? 1.0f : 0.0f, row1[j]);
                ones += valid[j] ? 1 : 0;
            }
            assertEquals(3, ones, "all 3 valid tokens are selected");
        }
    }

    /** return_routing: the block's output followed by every router's positions; arange(n) when not routed. */
    @Test
    void blocksReportTheirRouting() {
        try (NDManager m = NDManager.newBaseManager()) {
            ConditionalRoutedTransformerBlock block = ConditionalRoutedTransformerBlock.builder().setDim(DIM)
                    .setNumHeavyAttnTokensQ(4).setNumHeavyAttnTokensKv(5).optNumRoutedKv(2).setNumHeavyFfTokens(20)
                    .optLightDimHead(4).optLightHeads(2).optLightWindowSize(8).optHeavyDimHead(4).optHeavyHeads(2)
                    .build();
            block.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(2, 12, DIM));
            NDList out = block.forward(ps, new NDList(x), false, new PairList<>(List.of("return_routing"),
                    List.of(true)));
            assertEquals(List.of("output", "q_indices", "kv_indices", "ff_indices"),
                    out.stream().map(NDArray::getName).toList());
            assertEquals(new Shape(2, 4), out.get("q_indices").getShape());
            assertEquals(new Shape(2, 2, 5), out.get("kv_indices").getShape());
            // Kff = 20 >= n = 12: not routed, every position reported
            assertArrayEquals(new long[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
                    out.get("ff_indices").get(1).toLongArray(), "ff");
            NDArray plain = block.forward(ps, new NDList(x), false).singletonOrThrow();
            assertEquals(0f, plain.sub(out.get("output")).abs().max().getFloat());
        }
    }

    /** random_route: random scores, but masked tokens still come last. */
    @Test
    void randomRouteSelectsValidTokensFirst() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter r = router(m, CoordinateDescentRouter.builder());
            NDArray x = m.randomNormal(new Shape(1, 30, DIM));
            NDArray mask = m.arange(30).lt(6).expandDims(0);
            RouterReturn out = r.route(new ParameterStore(m, false), x, 6, mask, null, true, false, false);
            assertTrue(out.routedMask().all().getBoolean());
            long[] idx = out.indices().toLongArray();
            assertTrue(Arrays.stream(idx).allMatch(i -> i < 6));
        }
    }

    /**
     * Training noise explores: a token that scores just below the routed ones is sometimes routed in training, never
     * in evaluation. 30 tokens with similarities 0, 0.1, ..., 2.9 along the routing token; K = 5; σ = 1 reaches
     * several places below the cut, σ = 0 never does.
     */
    @Test
    void trainingNoiseRoutesTokensBelowTheCutInTrainingOnly() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(3);
            CoordinateDescentRouter noisy = router(m, CoordinateDescentRouter.builder().optTrainingNoise(1));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray token = StateDicts.parameters(noisy).get("routing_token").getArray();
            NDArray unit = token.div(token.norm()).reshape(1, 1, DIM);
            NDArray x = m.arange(0f, 3f, 0.1f).reshape(1, 30, 1).mul(unit);
            Set<Long> top = Set.of(25L, 26L, 27L, 28L, 29L);
            Set<Long> routedInTraining = new HashSet<>();
            for (int i = 0; i < 20; i++) {
                for (long index : noisy.route(ps, x, 5, null, true).indices().toLongArray()) {
                    routedInTraining.add(index);
                }
                Set<Long> eval = new HashSet<>();
                for (long index : noisy.route(ps, x, 5, null, false).indices().toLongArray()) {
                    eval.add(index);
                }
                assertEquals(top, eval, "evaluation routes the top 5");
            }
            assertTrue(routedInTraining.size() > 8, "training explored " + routedInTraining);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CoordinateDescentRouter.builder().setDim(DIM).optTrainingNoise(-1).build());
            assertTrue(e.getMessage().contains("trainingNoise (-1.0)"), e.getMessage());
        }
    }

    /**
     * Two cosine routers with one scale share the unit rows of a sequence (fused where {@code FusedNorm} runs, else
     * composed): routing with the rows another router computed gives the indices, scores and tokens of routing alone,
     * bit for bit, in training and with a mask; other scorings are told apart.
     */
    @Test
    void cosineRoutersOfOneScaleShareTheUnitRows() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(4);
            CoordinateDescentRouter.Builder cosine = CoordinateDescentRouter.builder().optCosineSimRouting(true)
                    .optCosineSimScale(8);
            CoordinateDescentRouter first = router(m, cosine.copy());
            CoordinateDescentRouter second = router(m, cosine.copy());
            assertTrue(first.scoresLike(second));
            assertFalse(first.scoresLike(router(m, cosine.copy().optCosineSimScale(4))));
            assertFalse(first.scoresLike(router(m, CoordinateDescentRouter.builder())));
            assertFalse(first.scoresLike(router(m, cosine.copy().optRouteBlockSize(8))));
            NDArray x = m.randomNormal(new Shape(2, 24, DIM));
            NDArray mask = m.randomUniform(0, 1, new Shape(2, 24)).gt(0.2);
            ParameterStore ps = new ParameterStore(m, false);
            for (boolean training : new boolean[] {false, true}) {
                NDArray unit = first.unitTokens(x);
                assertNotNull(unit);
                RouterReturn alone = second.route(ps, x, 6, mask, training);
                RouterReturn shared = second.route(ps, x, 6, mask, training, unit);
                String what = training ? "training" : "inference";
                assertArrayEquals(alone.indices().toLongArray(), shared.indices().toLongArray(), what);
                assertEquals(Arrays.toString(alone.scores().toFloatArray()),
                        Arrays.toString(shared.scores().toFloatArray()), what);
                assertEquals(Arrays.toString(alone.routedTokens().toFloatArray()),
                        Arrays.toString(shared.routedTokens().toFloatArray()), what);
            }
            assertNull(router(m, CoordinateDescentRouter.builder()).unitTokens(x));
        }
    }
}
