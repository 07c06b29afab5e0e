package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The reference's bugs (spec colt5.md §2.13), each with a check that the reference's behaviour would fail. The
 * fixture comparisons in {@link ParityTest} additionally show we differ from the unfixed reference's numbers
 * ({@code *_reference_bug} outputs) or compute where it raises ({@code reference_error}).
 */
class ReferenceBugsTest {

    private static final int DIM = 8;

    /** Reference: with R > 1, output row i gathers from input row ⌊i/R⌋, so row 1 of 2 gets row 0's tokens. */
    @Test
    void severalRoutesGatherFromTheirOwnBatchRow() {
        try (NDManager m = NDManager.newBaseManager()) {
            Engine.getInstance().setRandomSeed(3);
            CoordinateDescentRouter router = router(m, CoordinateDescentRouter.builder().optNumRoutingTokens(2));
            // row 0 is near 0, row 1 near 100: a token's row is visible in its values
            NDArray x = m.randomNormal(new Shape(2, 12, DIM)).add(m.create(new float[] {0, 100}).reshape(2, 1, 1));
            NDArray mask = m.arange(12).lt(9).expandDims(0).concat(m.arange(12).lt(12).expandDims(0), 0);
            RouterReturn r = router.route(new ParameterStore(m, false), x, 4, mask, false);
            assertEquals(new Shape(2, 2, 4, DIM), r.routedTokens().getShape());
            NDArray row1 = r.routedTokens().get(1);
            assertTrue(row1.min().getFloat() > 50, "row 1 must route its own tokens");
            assertTrue(r.routedTokens().get(0).max().getFloat() < 50, "row 0 must route its own tokens");
            // and the routed mask is row 1's: all of row 1 is valid, while row 0 has padding
            assertTrue(r.routedMask().get(1).all().getBoolean());
            NDArray expected = x.get(1).get(r.indices().get(1).reshape(-1)).reshape(2, 4, DIM);
            assertEquals(0f, row1.sub(expected).abs().max().getFloat());
        }
    }

    /**
     * Reference: IndexError with two or more route blocks. Here each block routes ⌈K/nb⌉ tokens of its own, and the
     * tail after the last full block is never routed (documented choice).
     */
    @Test
    void routeBlocksRouteEveryBlockAndNeverTheTail() {
        try (NDManager m = NDManager.newBaseManager()) {
            CoordinateDescentRouter router = router(m, CoordinateDescentRouter.builder().optRouteBlockSize(8));
            NDArray x = m.randomNormal(new Shape(2, 29, DIM));
            RouterReturn r = router.route(new ParameterStore(m, false), x, 7, null, false);
            // 3 blocks of 8 (tail of 5 dropped), ceil(7/3) = 3 tokens each
            assertEquals(new Shape(2, 9), r.indices().getShape());
            long[] idx = r.indices().toLongArray();
            for (int row = 0; row < 2; row++) {
                long[] perRow = Arrays.copyOfRange(idx, row * 9, row * 9 + 9);
                for (int block = 0; block < 3; block++) {
                    for (int j = 0; j < 3; j++) {
                        long i = perRow[block * 3 + j];
                        assertTrue(i >= block * 8L && i < block * 8L + 8, "index " + i + " outside block " + block);
                    }
                }
                assertTrue(Arrays.stream(perRow).allMatch(i -> i < 24), "the tail (24..28) is never routed");
            }
            NDArray expected = x.get(1).get(r.indices().get(1));
            assertEquals(0f, r.routedTokens().get(1).sub(expected).abs().max().getFloat());
        }
    }

    /** Reference: NameError on every call. Here the intended algorithm runs; unrouted queries get the null token. */
    @Test
    void crossAttentionRunsWithIntendedSemantics() {
        try (NDManager m = NDManager.newBaseManager()) {
            ConditionalRoutedCrossAttention cross = ConditionalRoutedCrossAttention.builder().setDim(DIM)
                    .setNumTokensQ(3).setNumTokensKv(5).optDimHead(4).optHeads(2).build();
            cross.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(2, 10, DIM));
            NDArray context = m.randomNormal(new Shape(2, 17, DIM));
            NDArray out = cross.apply(ps, x, context, null, null, null, null, false);
            assertEquals(new Shape(2, 10, DIM), out.getShape());
            float[] nullQ = StateDicts.parameters(cross).get("null_q_token").getArray().toFloatArray();
            int atNull = 0;
            for (int b = 0; b < 2; b++) {
                for (int i = 0; i < 10; i++) {
                    if (Arrays.equals(nullQ, out.get(b, i).toFloatArray())) {
                        atNull++;
                    }
                }
            }
            assertEquals(2 * (10 - 3), atNull, "every unrouted query holds exactly the null token");
            // queries not routed (n_q <= Kq): the attention output itself
            NDArray all = cross.apply(ps, x, context, null, null, 10, null, false);
            assertTrue(all.sub(out).abs().max().getFloat() > 0);
        }
    }

    /**
     * Reference: without a mask, the zero-padded keys of the last window enter the non-causal light attention, so
     * the result differs from passing an all-true mask. Here both are equal.
     */
    @Test
    void lightAttentionIgnoresWindowPadding() {
        try (NDManager m = NDManager.newBaseManager()) {
            LocalMHA light = LocalMHA.builder().setDim(DIM).setWindowSize(4).optDimHead(4).optHeads(2).optPrenorm(true)
                    .build();
            light.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(2, 13, DIM));
            NDArray noMask = light.apply(ps, x, null, false);
            NDArray allValid = light.apply(ps, x, m.ones(new Shape(2, 13)).gt(0), false);
            assertArrayEquals(allValid.toFloatArray(), noMask.toFloatArray(), 1e-6f);
            // and the last tokens do not depend on how far the sequence is padded: cut to 12 (no padding) + 1
            NDArray cut = light.apply(ps, x.get(":, :12"), null, false);
            assertArrayEquals(cut.get(":, :8").toFloatArray(), noMask.get(":, :8").toFloatArray(), 1e-6f);
        }
    }

    private static CoordinateDescentRouter router(NDManager m, CoordinateDescentRouter.Builder builder) {
        CoordinateDescentRouter router = builder.setDim(DIM).build();
        router.initialize(m, DataType.FLOAT32, new Shape(1, 1, DIM));
        return router;
    }
}
