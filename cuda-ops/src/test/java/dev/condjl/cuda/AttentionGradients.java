package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.training.GradientCollector;

import java.util.function.Function;

/**
 * Test helpers for attention implementations compared with a composed formula: an output and its gradients with
 * respect to q, k and v, and a float32 closeness assertion. Shared with djl-colt5's tests through cuda-ops' test
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
        NDArray[] inputs = {q.duplicate(), k.duplicate(), v.duplicate()};
        for (NDArray x : inputs) {
            x.setRequiresGradient(true);
        }
        NDArray out;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            out = attention.apply(inputs);
            collector.backward(out.mul(upstream).sum());
        }
        return new NDList(out, inputs[0].getGradient(), inputs[1].getGradient(), inputs[2].getGradient());
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
}
