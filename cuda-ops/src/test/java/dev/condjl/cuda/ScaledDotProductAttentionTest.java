package dev.condjl.cuda;

import static dev.condjl.cuda.AttentionGradients.assertClose;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link CondjlOps#scaledDotProductAttention}: values and gradients with respect to q, k and v equal those of
 * the composed DJL formula {@code softmax(q·kᵀ·scale + bias)·v} within float rounding, on the fused 4-D path and
 * the 3-D math path; masked keys, a fully masked query, bad input.
 */
class ScaledDotProductAttentionTest {

    private static final float MASKED = -Float.MAX_VALUE;
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        manager.getEngine().setRandomSeed(11);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableOnThisLibtorch() {
        assertEquals("", CondjlOps.attentionUnavailableReason());
    }

    @Test
    void equalsTheFormulaWithMaskedKeysAndGradients() {
        NDArray q = manager.randomNormal(new Shape(2, 3, 5, 8));
        NDArray k = manager.randomNormal(new Shape(2, 3, 7, 8));
        NDArray v = manager.randomNormal(new Shape(2, 3, 7, 4));
        // batch 0 masks keys 2 and 5 of every head and query; batch 1 attends to all
        float[] keep = new float[2 * 7];
        for (int j = 0; j < 14; j++) {
            keep[j] = j == 2 || j == 5 ? MASKED : 0;
        }
        NDArray bias = manager.create(keep, new Shape(2, 1, 1, 7));
        assertSameValuesAndGradients(q, k, v, bias, Math.pow(8, -0.5));
    }

    @Test
    void equalsTheFormulaWithoutBiasInThreeDimensions() {
        NDArray q = manager.randomNormal(new Shape(4, 6, 5));
        NDArray k = manager.randomNormal(new Shape(4, 9, 5));
        NDArray v = manager.randomNormal(new Shape(4, 9, 3));
        assertSameValuesAndGradients(q, k, v, null, 0.3);
    }

    @Test
    void fullyMaskedQueryAveragesTheValues() {
        NDArray q = manager.randomNormal(new Shape(1, 2, 3, 4));
        NDArray k = manager.randomNormal(new Shape(1, 2, 6, 4));
        NDArray v = manager.randomNormal(new Shape(1, 2, 6, 4));
        NDArray bias = fullyMaskedSecondQuery();
        NDArray out = CondjlOps.scaledDotProductAttention(q, k, v, bias, 0.5);
        assertClose(v.mean(new int[] {2}), out.get(":, :, 1"), "fully masked query");
        // the other queries' gradients are the formula's
        NDArray upstream = manager.randomNormal(new Shape(1, 2, 3, 4)).mul(manager.create(new float[] {1, 0, 1})
                .reshape(1, 1, 3, 1));
        assertSameValuesAndGradients(q, k, v, bias, 0.5, upstream);
    }

    /**
     * Pins a libtorch 2.7.1 CPU flash-attention property that {@code Attend} relies on avoiding: for a query whose
     * keys are all masked, the log-sum-exp {@code -MAX + ln j} rounds to {@code -MAX}, so its backward recomputes
     * every probability as 1 instead of 1/j and that query's share of dq, dk and dv is j times the formula's.
     */
    @Test
    void fullyMaskedQueryGradientIsScaledByTheKeyCount() {
        NDArray q = manager.randomNormal(new Shape(1, 2, 3, 4));
        NDArray k = manager.randomNormal(new Shape(1, 2, 6, 4));
        NDArray v = manager.randomNormal(new Shape(1, 2, 6, 4));
        NDArray bias = fullyMaskedSecondQuery();
        NDArray upstream = manager.randomNormal(new Shape(1, 2, 3, 4)).mul(manager.create(new float[] {0, 1, 0})
                .reshape(1, 1, 3, 1));
        NDList fused = valueAndGradients(q, k, v, upstream, inputs ->
                CondjlOps.scaledDotProductAttention(inputs[0], inputs[1], inputs[2], bias, 0.5));
        NDList composed = valueAndGradients(q, k, v, upstream, inputs -> formula(inputs, bias, 0.5));
        for (int i = 1; i < 4; i++) {
            assertClose(composed.get(i).mul(6), fused.get(i), "six times the formula's gradient " + i);
        }
    }

    /** (1, 1, 3, 6): query 1 sees no key, query 2 every other key, query 0 all. */
    private NDArray fullyMaskedSecondQuery() {
        float[] bias = new float[3 * 6];
        for (int j = 0; j < 6; j++) {
            bias[6 + j] = MASKED;
            bias[12 + j] = j % 2 == 0 ? MASKED : 0;
        }
        return manager.create(bias, new Shape(1, 1, 3, 6));
    }

    @Test
    void resultBelongsToTheQueriesManager() {
        try (NDManager other = manager.newSubManager()) {
            NDArray q = other.randomNormal(new Shape(1, 1, 2, 4));
            NDArray kv = manager.randomNormal(new Shape(1, 1, 3, 4));
            NDArray out = CondjlOps.scaledDotProductAttention(q, kv, kv, null, 0.5);
            assertEquals(other, out.getManager());
            assertEquals(new Shape(1, 1, 2, 4), out.getShape());
        }
    }

    @Test
    void rejectsBadInputWithClearMessages() {
        NDArray q = manager.randomNormal(new Shape(2, 3, 5, 8));
        NDArray k = manager.randomNormal(new Shape(2, 3, 7, 8));
        NDArray v = manager.randomNormal(new Shape(2, 3, 7, 4));
        NDArray keep = manager.ones(new Shape(2, 1, 1, 7), DataType.BOOLEAN);
        assertRejected("k must not be null", q, null, v, null, 1);
        assertRejected("k must be float32, got float16", q, k.toType(DataType.FLOAT16, false), v, null, 1);
        assertRejected("bias must be float32, got boolean (turn a keep mask into a bias", q, k, v, keep, 1);
        assertRejected("q, k and v must have the same rank", q, k.get(0), v, null, 1);
        assertRejected("q, k and v must be (..., i, dh), (..., j, dh), (..., j, dv)", q, k.get(":, :, :6"), v,
                null, 1);
        assertRejected("q, k and v must be (..., i, dh), (..., j, dh), (..., j, dv)", q, k.get(":, :, :, :4"), v,
                null, 1);
        assertRejected("q, k and v must be (..., i, dh), (..., j, dh), (..., j, dv)", q, k.get(":1"), v.get(":1"),
                null, 1);
        assertRejected("at least one key", q, k.get(":, :, :0"), v.get(":, :, :0"), null, 1);
        assertRejected("bias (2, 1, 5, 6) must have 2 to 4 dimensions and broadcast to the logits (2, 3, 5, 7)",
                q, k, v, manager.zeros(new Shape(2, 1, 5, 6)), 1);
        assertRejected("bias (1, 2, 3, 5, 7) must have 2 to 4 dimensions", q, k, v,
                manager.zeros(new Shape(1, 2, 3, 5, 7)), 1);
        assertRejected("bias (7) must have 2 to 4 dimensions", q, k, v, manager.zeros(new Shape(7)), 1);
        assertRejected("scale must be finite, got NaN", q, k, v, null, Double.NaN);
        assertTrue(CondjlOps.supportsScaledDotProductAttention(q, k, v, manager.zeros(new Shape(5, 1))));
        assertFalse(CondjlOps.supportsScaledDotProductAttention(q, k, v, keep));
    }

    private void assertRejected(String message, NDArray q, NDArray k, NDArray v, NDArray bias, double scale) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CondjlOps.scaledDotProductAttention(q, k, v, bias, scale));
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    private void assertSameValuesAndGradients(NDArray q, NDArray k, NDArray v, NDArray bias, double scale) {
        assertSameValuesAndGradients(q, k, v, bias, scale, manager.randomNormal(
                q.getShape().slice(0, q.getShape().dimension() - 1).add(v.getShape().tail())));
    }

    private void assertSameValuesAndGradients(NDArray q, NDArray k, NDArray v, NDArray bias, double scale,
            NDArray upstream) {
        assertTrue(CondjlOps.supportsScaledDotProductAttention(q, k, v, bias));
        NDList fused = valueAndGradients(q, k, v, upstream, inputs ->
                CondjlOps.scaledDotProductAttention(inputs[0], inputs[1], inputs[2], bias, scale));
        NDList composed = valueAndGradients(q, k, v, upstream, inputs -> formula(inputs, bias, scale));
        String[] names = {"output", "dq", "dk", "dv"};
        for (int i = 0; i < names.length; i++) {
            assertClose(composed.get(i), fused.get(i), names[i]);
        }
    }

    /** {@code softmax(q·kᵀ·scale + bias)·v} in DJL operations, for {q, k, v}. */
    private static NDArray formula(NDArray[] qkv, NDArray bias, double scale) {
        NDArray logits = qkv[0].matMul(qkv[1].swapAxes(-1, -2)).mul(scale);
        return (bias == null ? logits : logits.add(bias)).softmax(-1).matMul(qkv[2]);
    }
}
