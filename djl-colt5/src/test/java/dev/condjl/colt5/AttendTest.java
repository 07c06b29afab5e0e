package dev.condjl.colt5;

import static dev.condjl.cuda.AttentionGradients.assertClose;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.condjl.cuda.CondjlOps;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Attend}'s fused path (one libtorch op) against its DJL-op path: same values and gradients with respect to
 * q, k and v; a query whose keys are all masked keeps the DJL path unless the caller rules it out.
 */
class AttendTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        manager.getEngine().setRandomSeed(7);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void fusedEqualsComposedWhenEveryQueryKeepsAKey() {
        assertEquals("", CondjlOps.attentionUnavailableReason());
        NDArray q = manager.randomNormal(new Shape(2, 4, 6, 16));
        NDArray k = manager.randomNormal(new Shape(2, 4, 9, 16));
        NDArray v = manager.randomNormal(new Shape(2, 4, 9, 16));
        // (b, 1, 1, j) with key 0 always kept, as Attention's null key
        NDArray keep = manager.randomUniform(0, 1, new Shape(2, 1, 1, 9)).lt(0.6f)
                .logicalOr(manager.arange(9).eq(0).reshape(1, 1, 1, 9));
        NDArray upstream = manager.randomNormal(new Shape(2, 4, 6, 16));
        NDList fused = valueAndGradients(q, k, v, upstream, in -> Attend.attend(in[0], in[1], in[2], keep, true));
        NDList composed = valueAndGradients(q, k, v, upstream, in -> Attend.attend(in[0], in[1], in[2], keep));
        NDList unmaskedFused = valueAndGradients(q, k, v, upstream, in -> Attend.attend(in[0], in[1], in[2], null));
        NDList unmaskedComposed = valueAndGradients(q, k, v, upstream, in -> composed(in[0], in[1], in[2]));
        for (int i = 0; i < 4; i++) {
            assertClose(composed.get(i), fused.get(i), "masked " + i);
            assertClose(unmaskedComposed.get(i), unmaskedFused.get(i), "unmasked " + i);
        }
    }

    @Test
    void fullyMaskedQueryAveragesTheValuesWithTheFormulasGradient() {
        NDArray q = manager.randomNormal(new Shape(1, 1, 2, 4));
        NDArray k = manager.randomNormal(new Shape(1, 1, 5, 4));
        NDArray v = manager.randomNormal(new Shape(1, 1, 5, 4));
        NDArray keep = manager.create(new boolean[] {true, false, true, false, true, false, false, false, false,
            false}, new Shape(1, 1, 2, 5));
        NDArray upstream = manager.randomNormal(new Shape(1, 1, 2, 4));
        NDList attended = valueAndGradients(q, k, v, upstream, in -> Attend.attend(in[0], in[1], in[2], keep));
        assertClose(v.mean(new int[] {2}), attended.get(0).get(":, :, 1"), "fully masked query");
        NDList formula = valueAndGradients(q, k, v, upstream, in -> {
            NDArray sim = in[0].matMul(in[1].swapAxes(-1, -2)).mul(0.5).add(Tensors.maskBias(keep));
            return sim.softmax(-1).matMul(in[2]);
        });
        for (int i = 0; i < 4; i++) {
            assertClose(formula.get(i), attended.get(i), "output and gradients " + i);
        }
    }

    private static NDArray composed(NDArray q, NDArray k, NDArray v) {
        return q.matMul(k.swapAxes(-1, -2)).mul(Math.pow(q.getShape().tail(), -0.5)).softmax(-1).matMul(v);
    }
}
