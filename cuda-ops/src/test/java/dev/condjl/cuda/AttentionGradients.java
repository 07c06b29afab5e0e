package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.training.GradientCollector;

import java.util.function.Function;

/**
 * Test helpers for fused ops compared with a composed formula (attention, norms): an output and its gradients with
 * respect to each input, and a float32 closeness assertion. Shared with djl-colt5's tests through cuda-ops' test
 * jar.
 */
public final class AttentionGradients {

    private AttentionGradients() {}

    /**
     * {out, dq, dk, dv} of fresh copies of q, k, v, for the loss {@code sum(out · upstream)}.
     *
     * @param q queries
     * @param k keys
     * @param v values
     * @param upstream the loss weights, of the output's shape
     * @param attention the attention of {q, k, v}
     * @return output and the three gradients
     */
    public static NDList valueAndGradients(NDArray q, NDArray k, NDArray v, NDArray upstream,
            Function<NDArray[], NDArray> attention) {
        return valueAndGradients(upstream, attention, q, k, v);
    }

    /**
     * {out, d input 0, d input 1, ...} of fresh copies of the inputs, for the loss {@code sum(out · upstream)}.
     *
     * @param upstream the loss weights, of the output's shape
     * @param op the function of the inputs
     * @param inputs its inputs
     * @return output and one gradient per input
     */
    public static NDList valueAndGradients(NDArray upstream, Function<NDArray[], NDArray> op, NDArray... inputs) {
        NDArray[] copies = new NDArray[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            copies[i] = inputs[i].duplicate();
            copies[i].setRequiresGradient(true);
        }
        NDArray out;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            out = op.apply(copies);
            collector.backward(out.mul(upstream).sum());
        }
        NDList result = new NDList(out);
        for (NDArray x : copies) {
            result.add(x.getGradient());
        }
        return result;
    }

    /**
     * Asserts equal shapes and every element within {@code 2e-6 + 2e-5·|expected|}.
     *
     * @param expected the reference
     * @param actual the value under test
     * @param what named in a failure
     */
    public static void assertClose(NDArray expected, NDArray actual, String what) {
        assertEquals(expected.getShape(), actual.getShape(), what);
        float[] e = expected.toFloatArray();
        float[] a = actual.toFloatArray();
        for (int i = 0; i < e.length; i++) {
            assertTrue(Math.abs(e[i] - a[i]) <= 2e-6 + 2e-5 * Math.abs(e[i]),
                    what + "[" + i + "]: expected " + e[i] + ", got " + a[i]);
        }
    }

    /**
     * Asserts equal shapes and every element within {@code tolerance · max|expected|}: the check for a result computed
     * in lower precision, whose rounding scales with the largest value.
     *
     * @param expected the reference
     * @param actual the value under test
     * @param tolerance relative to the largest magnitude of {@code expected}
     * @param what named in a failure
     */
    public static void assertWithinScale(NDArray expected, NDArray actual, double tolerance, String what) {
        assertWithinScale(expected, actual, tolerance, 0, what);
    }

    /**
     * {@link #assertWithinScale(NDArray, NDArray, double, String)} with the scale at least {@code minScale}: for a
     * gradient that is nearly zero next to the others of the same computation, whose rounding is theirs.
     *
     * @param expected the reference
     * @param actual the value under test
     * @param tolerance relative to the scale
     * @param minScale the least scale, {@code >= 0}
     * @param what named in a failure
     */
    public static void assertWithinScale(NDArray expected, NDArray actual, double tolerance, double minScale,
            String what) {
        assertEquals(expected.getShape(), actual.getShape(), what);
        float[] e = expected.toFloatArray();
        float[] a = actual.toFloatArray();
        double scale = minScale;
        for (float x : e) {
            scale = Math.max(scale, Math.abs(x));
        }
        for (int i = 0; i < e.length; i++) {
            assertTrue(Math.abs(e[i] - a[i]) <= tolerance * scale,
                    what + "[" + i + "]: expected " + e[i] + ", got " + a[i] + " (scale " + scale + ")");
        }
    }
}
