package dev.condjl.stochastic;

import static dev.condjl.stochastic.TestArrays.rowBitsEqual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;

import org.junit.jupiter.api.Test;

import java.util.function.Function;

/** Layer drop with a zero-weighted dummy sample (dropout-stochastic.md §2.2, §2.4, §6.3). */
class LayerDropTest extends ManagedTest {

    @Test
    void droppedLayerReturnsTheInputAndGivesItsParametersZeroGradients() {
        NDArray x = manager.randomNormal(new Shape(5, 3, 4));
        x.set(new NDIndex(":, 0, 0"), -0.0f);
        NDArray w = manager.randomNormal(new Shape(4, 4));
        x.setRequiresGradient(true);
        w.setRequiresGradient(true);
        NDArray upstream = manager.randomNormal(x.getShape());
        NDArray out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            out = LayerDrop.layerDrop(x, v -> v.matMul(w).tanh(), 1.0, true);
            gc.backward(out.mul(upstream).sum());
        }
        for (long i = 0; i < 5; i++) {
            assertTrue(rowBitsEqual(x, out, i), "row " + i);
        }
        // the gradient is defined (the parameter took part) and exactly zero
        NDArray gw = JniUtils.getGradient((PtNDArray) w);
        assertNotNull(gw, "the dropped layer's parameter must receive a gradient");
        assertEquals(0f, gw.abs().sum().getFloat());
        assertTrue(upstream.contentEquals(x.getGradient()), "identity gradient to the stream");
    }

    @Test
    void evalAndZeroRateRunTheLayer() {
        NDArray x = manager.randomNormal(new Shape(5, 4));
        Function<NDArray, NDArray> f = NDArray::tanh;
        NDArray full = x.add(x.tanh());
        assertTrue(full.contentEquals(LayerDrop.layerDrop(x, f, 1.0, false)));
        assertTrue(full.contentEquals(LayerDrop.layerDrop(x, f, 0.0, true)));
    }

    @Test
    void dropsAtRatePAndDoesNotRescaleKeptLayers() {
        NDArray x = manager.randomNormal(new Shape(2, 3));
        NDArray full = x.add(x.tanh());
        Engine.getInstance().setRandomSeed(3);
        int dropped = 0;
        for (int t = 0; t < 400; t++) {
            NDArray out = LayerDrop.layerDrop(x, NDArray::tanh, 0.3, true);
            if (out.contentEquals(x)) {
                dropped++;
            } else {
                assertTrue(out.contentEquals(full), "a kept layer is x + f(x), not rescaled");
            }
        }
        // binomial(400, 0.3): mean 120, std 9.2
        assertTrue(dropped > 85 && dropped < 155, "dropped " + dropped + " of 400");
    }

    @Test
    void decisionsAreReproducibleWithASeed() {
        StringBuilder first = new StringBuilder();
        StringBuilder second = new StringBuilder();
        for (StringBuilder run : new StringBuilder[] {first, second}) {
            Engine.getInstance().setRandomSeed(11);
            for (int t = 0; t < 40; t++) {
                run.append(LayerDrop.sampleDrop(manager, 0.5) ? '1' : '0');
            }
        }
        assertEquals(first.toString(), second.toString());
        assertTrue(first.indexOf("1") >= 0 && first.indexOf("0") >= 0, first.toString());
    }
}
