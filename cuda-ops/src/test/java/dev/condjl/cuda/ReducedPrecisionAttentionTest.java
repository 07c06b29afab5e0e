package dev.condjl.cuda;

import static dev.condjl.cuda.AttentionGradients.assertWithinScale;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;

/**
 * {@link CondjlOps#scaledDotProductAttention(NDArray, NDArray, NDArray, NDArray, double, AttentionPrecision)} in
 * float16 and bfloat16, on DJL's default device: available; float32 in and out, values and all three gradients within
 * the 16-bit rounding of the float32 ones, and not equal to them (the reduced kernels ran); masked keys get no
 * weight; a fully masked query cut from the result leaves every gradient finite.
 */
class ReducedPrecisionAttentionTest {

    private static final float MASKED = -Float.MAX_VALUE;
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(5);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @ParameterizedTest
    @EnumSource(AttentionPrecision.class)
    void isAvailable(AttentionPrecision precision) {
        assertEquals("", CondjlOps.attentionUnavailableReason(precision));
        assertEquals(precision, CondjlOps.usablePrecision(precision));
    }

    @ParameterizedTest
    @EnumSource(value = AttentionPrecision.class, names = {"FLOAT16", "BFLOAT16"})
    void agreesWithFloat32WithinItsRounding(AttentionPrecision precision) {
        NDArray q = manager.randomNormal(new Shape(2, 3, 40, 16));
        NDArray k = manager.randomNormal(new Shape(2, 3, 48, 16));
        NDArray v = manager.randomNormal(new Shape(2, 3, 48, 8));
        // every third key of batch 1 is masked
        float[] keep = new float[2 * 48];
        for (int j = 48; j < 96; j += 3) {
            keep[j] = MASKED;
        }
        NDArray bias = manager.create(keep, new Shape(2, 1, 1, 48));
        NDArray upstream = manager.randomNormal(new Shape(2, 3, 40, 8));
        NDList exact = valueAndGradients(q, k, v, upstream, a ->
                CondjlOps.scaledDotProductAttention(a[0], a[1], a[2], bias, 0.25, AttentionPrecision.INPUT));
        NDList reduced = valueAndGradients(q, k, v, upstream, a ->
                CondjlOps.scaledDotProductAttention(a[0], a[1], a[2], bias, 0.25, precision));
        double tolerance = precision == AttentionPrecision.FLOAT16 ? 4e-3 : 3e-2;
        String[] names = {"output", "dq", "dk", "dv"};
        for (int i = 0; i < 4; i++) {
            assertEquals(DataType.FLOAT32, reduced.get(i).getDataType(), names[i]);
            assertWithinScale(exact.get(i), reduced.get(i), tolerance, precision + " " + names[i]);
        }
        assertFalse(Arrays.equals(exact.head().toFloatArray(), reduced.head().toFloatArray()),
                "the output carries 16-bit rounding");
        // a masked key's value has no share in any output of batch 1
        NDArray dvMasked = reduced.get(3).get("1, :, 0::3, :");
        assertEquals(0f, dvMasked.abs().max().getFloat(), precision + " gradient of masked values");
    }

    @ParameterizedTest
    @EnumSource(value = AttentionPrecision.class, names = {"FLOAT16", "BFLOAT16"})
    void fullyMaskedQueryCutFromTheResultLeavesGradientsFinite(AttentionPrecision precision) {
        NDArray q = manager.randomNormal(new Shape(1, 2, 4, 8));
        NDArray k = manager.randomNormal(new Shape(1, 2, 6, 8));
        NDArray v = manager.randomNormal(new Shape(1, 2, 6, 8));
        float[] keep = new float[4 * 6];
        Arrays.fill(keep, 18, 24, MASKED);
        NDArray bias = manager.create(keep, new Shape(1, 1, 4, 6));
        // query 3 sees no key and is cut, as a padded query is
        NDArray upstream = manager.randomNormal(new Shape(1, 2, 4, 8))
                .mul(manager.create(new float[] {1, 1, 1, 0}).reshape(1, 1, 4, 1));
        NDList reduced = valueAndGradients(q, k, v, upstream, a ->
                CondjlOps.scaledDotProductAttention(a[0], a[1], a[2], bias, 0.35, precision));
        NDList exact = valueAndGradients(q, k, v, upstream, a ->
                CondjlOps.scaledDotProductAttention(a[0], a[1], a[2], bias, 0.35, AttentionPrecision.INPUT));
        for (int i = 0; i < 4; i++) {
            NDArray x = reduced.get(i);
            assertFalse(x.isNaN().logicalOr(x.isInfinite()).any().getBoolean(), precision + " finite " + i);
        }
        double tolerance = precision == AttentionPrecision.FLOAT16 ? 4e-3 : 3e-2;
        for (int i = 2; i < 4; i++) {
            assertWithinScale(exact.get(i), reduced.get(i), tolerance, precision + " gradient " + i);
        }
    }
}
