package dev.condjl.topk;

import static dev.condjl.topk.CoordinateDescentTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import dev.condjl.cuda.CondjlOps;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Map;

/** Spec colt5.md §2.11 ({@link TopK#topk}) and §2.13 item 1 ({@link TopK#select} with {@link TieBreak}). */
class TopKTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(11);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void matchesReferenceForwardAndGradient() {
        Map<String, NDArray> tensors = Fixtures.tensors(manager, "topk");
        for (JsonElement element : Fixtures.cases("topk")) {
            JsonObject c = element.getAsJsonObject();
            String name = c.get("name").getAsString();
            NDArray x = tensors.get(name + ".x");
            x.setRequiresGradient(true);
            TopKResult result;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                result = TopK.topk(x, c.get("k").getAsInt(), tensors.get(name + ".mask"), options(c));
                collector.backward(result.values().mul(tensors.get(name + ".grad_values")).sum()
                        .add(result.coorDescentValues().mul(tensors.get(name + ".grad_coor_descent_values")).sum())
                        .add(result.gates().mul(tensors.get(name + ".grad_gates")).sum()));
            }
            assertArrayEquals(tensors.get(name + ".indices").toLongArray(), result.indices().toLongArray(), name);
            Fixtures.assertClose(tensors.get(name + ".values"), result.values(), 1e-5, name + " values");
            Fixtures.assertClose(tensors.get(name + ".coor_descent_values"), result.coorDescentValues(), 1e-5,
                    name + " coor_descent_values");
            Fixtures.assertClose(tensors.get(name + ".gates"), result.gates(), 0, name + " gates");
            Fixtures.assertGradientClose(tensors.get(name + ".grad_x"), x.getGradient(), name + " grad_x");
        }
    }

    private static TopK.Options options(JsonObject c) {
        TopK.Options.Builder builder = TopK.Options.builder();
        if (c.has("n_iters")) {
            builder.optIters(c.get("n_iters").getAsInt());
        }
        if (c.has("eps")) {
            builder.optEps(c.get("eps").getAsDouble());
        }
        if (c.has("eps_init")) {
            builder.optEpsInit(c.get("eps_init").getAsDouble());
        }
        if (c.has("eps_decay")) {
            builder.optEpsDecay(c.get("eps_decay").getAsDouble());
        }
        return builder.build();
    }

    @Test
    void gatesAreExactlyOneAndValuesAreTheHardTopK() {
        NDArray x = manager.randomNormal(new Shape(4, 40));
        // Masking the largest entries: the hard top-k still returns them, with soft score 0 and gate 1.0.
        NDArray mask = x.lt(1.5);
        TopKResult result = TopK.topk(x, 6, mask, TopK.Options.builder().build());
        NDList hard = x.topK(6, -1);
        assertArrayEquals(hard.get(1).toLongArray(), result.indices().toLongArray());
        assertArrayEquals(hard.get(0).toFloatArray(), result.values().toFloatArray());
        for (float gate : result.gates().toFloatArray()) {
            assertEquals(1f, gate);
        }
        float[] soft = result.coorDescentValues().toFloatArray();
        boolean[] selectedValid = mask.gather(result.indices(), -1).toBooleanArray();
        for (int i = 0; i < soft.length; i++) {
            assertTrue(selectedValid[i] ? soft[i] > 0 : soft[i] == 0f, "selected entry " + i + " soft " + soft[i]);
        }
    }

    @Test
    void nonDifferentiableModeReturnsThePlainTopKOnly() {
        NDArray x = manager.randomNormal(new Shape(3, 9));
        TopKResult result = TopK.topk(x, 4, null, TopK.Options.builder().optNonDifferentiable(true).build());
        NDList hard = x.topK(4, -1);
        assertArrayEquals(hard.get(0).toFloatArray(), result.values().toFloatArray());
        assertArrayEquals(hard.get(1).toLongArray(), result.indices().toLongArray());
        assertNull(result.coorDescentValues());
        assertNull(result.gates());
    }

    @Test
    void byInputBreaksTiesByRawScoreThenIndex() {
        NDArray scores = manager.create(new float[] {1, 1, 1, 0.5f, 1, Float.NaN, 1}).reshape(1, 7);
        NDArray raw = manager.create(new float[] {0.1f, 0.9f, 0.5f, 2f, 0.9f, 0f, 0.9f}).reshape(1, 7);
        NDList selected = TopK.select(scores, raw, 5, TieBreak.BY_INPUT);
        assertArrayEquals(new long[] {5, 1, 4, 6, 2}, selected.get(1).toLongArray());
        assertEquals(DataType.INT64, selected.get(1).getDataType());
        assertEquals(new Shape(1, 5), selected.get(0).getShape());
        assertTrue(Float.isNaN(selected.get(0).getFloat(0, 0)));
    }

    /**
     * Ties at the cut, at 1.0 (saturated) and at 0.0 (underflowed valid scores and masked ones). Row 0: four 1.0 for
     * k = 3. Row 1: one 0.9, then 0.0 at valid positions 1 and 4 and at masked positions 0, 2, 3, 5 with larger raw
     * scores, k = 3. Row 2: one valid entry for k = 3, so masked entries must fill. {@link TieBreak#REFERENCE} is
     * torch.topk: only the top-k values (and every entry above the cut) are defined. {@link TieBreak#BY_INPUT} with
     * the mask is a total order that never ranks a masked entry above a valid one of equal score.
     */
    @Test
    void tiesAtOneAndZeroByBothTieBreaks() {
        NDArray scores = manager.create(new float[] {
            1, 0.2f, 1, 1, 0.5f, 1,
            0, 0, 0, 0, 0, 0.9f,
            0, 0, 0.7f, 0, 0, 0}).reshape(3, 6);
        NDArray raw = manager.create(new float[] {
            3, 1, 5, 4, 2, 6,
            9, -2, 8, 7, -1, 1,
            4, 3, 2, 1, 0, -1}).reshape(3, 6);
        NDArray mask = manager.create(new boolean[] {
            true, true, true, true, true, true,
            false, true, false, false, true, true,
            false, false, true, false, false, false}).reshape(3, 6);
        NDList reference = TopK.select(scores, null, mask, 3, TieBreak.REFERENCE);
        assertArrayEquals(new float[] {1, 1, 1, 0.9f, 0, 0, 0.7f, 0, 0}, reference.get(0).toFloatArray(),
                "REFERENCE: the top-k values are defined");
        long[] refIdx = reference.get(1).toLongArray();
        assertEquals(5, refIdx[3], "REFERENCE: the entry above the cut is defined");
        assertEquals(2, refIdx[6]);
        assertArrayEquals(reference.get(0).toFloatArray(), scores.topK(3, -1).get(0).toFloatArray(),
                "REFERENCE is the engine's topk");

        NDList byInput = TopK.select(scores, raw, mask, 3, TieBreak.BY_INPUT);
        assertArrayEquals(new long[] {5, 2, 3, 5, 4, 1, 2, 0, 1}, byInput.get(1).toLongArray(),
                "BY_INPUT: 1.0-ties by raw score; 0.0-ties valid first, then raw score, masked fill last by raw");
        assertArrayEquals(reference.get(0).toFloatArray(), byInput.get(0).toFloatArray(), "same values");
        assertArrayEquals(new long[] {5, 2, 3, 5, 0, 2, 2, 0, 1},
                TopK.select(scores, raw, 3, TieBreak.BY_INPUT).get(1).toLongArray(),
                "without the mask the larger raw scores of masked entries win the 0.0-ties");
    }

    @Test
    void byInputKeepsTheOrderOfUnequalScores() {
        NDArray scores = manager.randomNormal(new Shape(5, 3, 30));
        NDArray raw = manager.randomNormal(new Shape(5, 3, 30));
        NDList reference = TopK.select(scores, null, 12, TieBreak.REFERENCE);
        NDList byInput = TopK.select(scores, raw, 12, TieBreak.BY_INPUT);
        assertArrayEquals(reference.get(1).toLongArray(), byInput.get(1).toLongArray());
        assertArrayEquals(reference.get(0).toFloatArray(), byInput.get(0).toFloatArray());
        NDArray single = manager.create(new float[] {3}).reshape(1, 1);
        assertArrayEquals(new long[] {0}, TopK.select(single, single, 1, TieBreak.BY_INPUT).get(1).toLongArray());
    }

    @Test
    void byInputOnSaturatedSoftScoresSelectsTheTopKOfTheRawScores() {
        // Inputs ×10 under the router schedule: far more than k entries per row saturate at 1.0 (spec §2.13 item 1).
        NDArray s = manager.randomNormal(new Shape(6, 64)).mul(10);
        NDArray soft = CoordinateDescent.solve(s, 9, null, CoordinateDescentTest.unrolled()
                .setIters(20).optEps(0.03).optEpsInit(4.0).optEpsDecay(0.7).build());
        assertTrue(soft.eq(1f).sum(new int[] {-1}).max().getLong() > 8, "more than k saturated in some row");
        NDList selected = TopK.select(soft, s, 8, TieBreak.BY_INPUT);
        assertArrayEquals(s.topK(8, -1).get(1).toLongArray(), selected.get(1).toLongArray());
    }

    @Test
    void selectedValuesCarryTheGradient() {
        NDArray scores = manager.create(new float[] {0.2f, 0.9f, 0.9f, 0.1f});
        scores.setRequiresGradient(true);
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            collector.backward(TopK.select(scores, scores.stopGradient(), 2, TieBreak.BY_INPUT).get(0).sum());
        }
        assertArrayEquals(new float[] {0, 1, 1, 0}, scores.getGradient().toFloatArray());
    }

    @Test
    void rejectsBadArgumentsNamingThem() {
        NDArray x = manager.randomNormal(new Shape(2, 6));
        TopK.Options defaults = TopK.Options.builder().build();
        assertMessage("k (0)", () -> TopK.topk(x, 0, null, defaults));
        assertMessage("k (7) must be in [1, 6]", () -> TopK.topk(x, 7, null, defaults));
        assertMessage("coorDescentKRatio (0.5)", () -> TopK.Options.builder().optCoorDescentKRatio(0.5).build());
        assertMessage("iters (0)", () -> TopK.Options.builder().optIters(0).build());
        assertMessage("eps (0.0)", () -> TopK.Options.builder().optEps(0).build());
        assertMessage("x must be float16, float32 or float64, got int64",
                () -> TopK.topk(x.toType(DataType.INT64, false), 2, null, defaults));
        assertMessage("mask shape (3)",
                () -> TopK.topk(x, 2, manager.ones(new Shape(3), DataType.BOOLEAN), defaults));
        assertMessage("raw shape (2, 5)",
                () -> TopK.select(x, manager.ones(new Shape(2, 5)), 2, TieBreak.BY_INPUT));
        assertMessage("mask must be boolean with the scores' shape (2, 6), got float32 (2, 6)",
                () -> TopK.select(x, x, x, 2, TieBreak.REFERENCE));
    }

    /**
     * The native tie-broken top-k ({@link CondjlOps#topKByInput}) picks exactly what the DJL operations pick, and its
     * straight-through gates equal libtorch's {@code y + (1 - y)}, on rows full of ties (few distinct values), with
     * ±0, ±inf, NaN and values whose {@code 1 - y} rounds among scores and raw values, masks, float16, several
     * leading axes, k from 1 to n, and rows short and long (5,000 entries: the GPU's radix select); on the CPU and,
     * where its kernels run, on the GPU.
     */
    @Test
    void nativeByInputEqualsTheDjlOperations() {
        assertTrue(CondjlOps.isAvailable(), CondjlOps::unavailableReason);
        float[] values = {0f, -0f, 1f, 1f, -1f, 0.5f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
            2f, 1e-45f, -1e-45f, 0.3f, 0.1f, 1e-8f, 3e-5f};
        java.util.Random random = new java.util.Random(5);
        int checked = 0;
        for (ai.djl.Device device : devices()) {
            try (NDManager m = NDManager.newBaseManager(device)) {
                for (int n : new int[] {1, 7, 33, 300, 5000}) {
                    Shape shape = new Shape(2, 3, n);
                    float[] s = new float[(int) shape.size()];
                    float[] r = new float[s.length];
                    boolean[] valid = new boolean[s.length];
                    for (int i = 0; i < s.length; i++) {
                        s[i] = values[random.nextInt(values.length)];
                        r[i] = values[random.nextInt(values.length)];
                        valid[i] = random.nextInt(3) > 0;
                    }
                    for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT16}) {
                        NDArray scores = m.create(s, shape).toType(type, false);
                        NDArray raw = m.create(r, shape).toType(type, false);
                        NDArray mask = m.create(valid, shape);
                        for (int k = 1; k <= n; k += Math.max(1, n / 5)) {
                            for (NDArray maybeMask : new NDArray[] {null, mask}) {
                                NDArray fused = CondjlOps.topKByInput(scores, raw, maybeMask, k);
                                NDList ops = TopK.byInputWithOps(scores, raw, maybeMask, k);
                                String what = device + " " + type + " n=" + n + " k=" + k + " mask "
                                        + (maybeMask != null);
                                assertEquals(new Shape(2, 3, k), fused.getShape(), what);
                                assertArrayEquals(ops.get(1).toLongArray(), fused.toLongArray(), what);
                                NDList selected = TopK.select(scores, raw, maybeMask, k, TieBreak.BY_INPUT);
                                assertArrayEquals(ops.get(1).toLongArray(), selected.get(1).toLongArray(), what);
                                // the kernel's gates: y + (1 - y) of the selected scores, rounded as libtorch does
                                NDList gated = CondjlOps.topKByInputWithGates(scores, raw, maybeMask, k);
                                assertArrayEquals(fused.toLongArray(), gated.get(0).toLongArray(), what);
                                assertEquals(type, gated.get(1).getDataType(), what);
                                NDArray gates = StraightThroughSelection.straightThrough(scores.gather(fused, -1));
                                assertArrayEquals(gates.toType(DataType.FLOAT32, false).toFloatArray(),
                                        gated.get(1).toType(DataType.FLOAT32, false).toFloatArray(), what);
                                checked++;
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked >= 76, "checked " + checked);
        NDArray scores = manager.ones(new Shape(2, 4));
        assertMessage("raw float32 (2, 3) must have the dtype and shape of scores float32 (2, 4)",
                () -> CondjlOps.topKByInput(scores, manager.ones(new Shape(2, 3)), null, 2));
        assertMessage("k (5) must be in [1, 4]", () -> CondjlOps.topKByInput(scores, scores, null, 5));
    }

    /** The CPU, and the first GPU where the native kernels run there. */
    private static java.util.List<ai.djl.Device> devices() {
        java.util.List<ai.djl.Device> devices = new java.util.ArrayList<>(java.util.List.of(ai.djl.Device.cpu()));
        if (Engine.getInstance().getGpuCount() > 0 && CondjlOps.supports(ai.djl.Device.gpu())) {
            devices.add(ai.djl.Device.gpu());
        }
        return devices;
    }
}
