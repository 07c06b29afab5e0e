package dev.condjl.cuda;

import static dev.condjl.cuda.Refusals.assertMessage;
import static dev.condjl.cuda.AttentionGradients.assertClose;
import static dev.condjl.cuda.AttentionGradients.valueAndGradients;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link FusedLinear#linear}, on DJL's default device: available on libtorch 2.7.1 and later; its values and
 * gradients equal DJL's {@code Linear.linear} within float rounding, with and without a bias, for inputs of two to
 * four dimensions; bad input is refused naming it.
 */
class FusedLinearTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        manager.getEngine().setRandomSeed(9);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @Test
    void isAvailableWithTheDispatcher() {
        assertEquals("", FusedLinear.unavailableReason());
    }

    @Test
    void equalsDjlsLinearWithGradients() {
        NDArray weight = manager.randomNormal(new Shape(24, 16));
        NDArray bias = manager.randomNormal(new Shape(24));
        for (Shape in : new Shape[] {new Shape(5, 16), new Shape(3, 7, 16), new Shape(2, 3, 4, 16)}) {
            Shape out = in.slice(0, in.dimension() - 1).add(24);
            NDArray x = manager.randomNormal(in);
            NDArray upstream = manager.randomNormal(out);
            NDList fused = valueAndGradients(upstream, a -> FusedLinear.linear(a[0], a[1], a[2]), x, weight, bias);
            NDList djl = valueAndGradients(upstream, a -> Linear.linear(a[0], a[1], a[2]).head(), x, weight, bias);
            String[] names = {"value", "dx", "dweight", "dbias"};
            for (int i = 0; i < 4; i++) {
                assertEquals(djl.get(i).getShape(), fused.get(i).getShape(), in + " " + names[i]);
                assertClose(djl.get(i), fused.get(i), in + " " + names[i]);
            }
            NDList fusedNoBias = valueAndGradients(upstream, a -> FusedLinear.linear(a[0], a[1], null), x, weight);
            NDList djlNoBias = valueAndGradients(upstream, a -> Linear.linear(a[0], a[1]).head(), x, weight);
            for (int i = 0; i < 3; i++) {
                assertClose(djlNoBias.get(i), fusedNoBias.get(i), in + " without bias " + names[i]);
            }
        }
    }

    @Test
    void refusesBadInputNamingIt() {
        NDArray x = manager.ones(new Shape(2, 3, 8));
        NDArray w = manager.ones(new Shape(4, 8));
        assertMessage("weight (4, 5) must be (out, 8) for x (2, 3, 8)",
                () -> FusedLinear.linear(x, manager.ones(new Shape(4, 5)), null));
        assertMessage("bias (3) must be (4) for weight (4, 8)",
                () -> FusedLinear.linear(x, w, manager.ones(new Shape(3))));
        assertMessage("x must be float32, got int32",
                () -> FusedLinear.linear(x.toType(DataType.INT32, false), w, null));
        assertMessage("weight must be float32, got float64",
                () -> FusedLinear.linear(x, w.toType(DataType.FLOAT64, false), null));
        assertMessage("at least one dimension", () -> FusedLinear.linear(manager.create(1f), w, null));
        assertMessage("weight must not be null", () -> FusedLinear.linear(x, null, null));
        assertFalse(FusedLinear.supports(x, manager.ones(new Shape(8)), null));
        assertTrue(FusedLinear.supports(x, w, null));
    }

}
