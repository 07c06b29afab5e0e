package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Gradients must not depend on a garbage collection between forward and backward (see {@link Scalars}). */
class ScalarGradientTest {

    @Test
    void learnedDropoutAndDropConnectGradientsSurviveGarbageCollection() throws InterruptedException {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray qkvInput = m.randomNormal(new Shape(2, 5, 12));
            NDArray weightInput = m.randomNormal(new Shape(4, 4));
            NDArray shift = m.zeros(new Shape(4));
            float[][] reference = null;
            for (boolean collect : new boolean[] {false, true}) {
                NDArray qkv = qkvInput.duplicate();
                NDArray w = weightInput.duplicate();
                qkv.setRequiresGradient(true);
                w.setRequiresGradient(true);
                Engine.getInstance().setRandomSeed(11);
                List<ByteBuffer> reuse = new ArrayList<>();
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray keep = LearnedDropout.keepProbability(qkv, shift, 2);
                    NDArray loss = LearnedDropout.penalty(keep, LearnedDropout.PenaltyType.SQUARED)
                            .add(WeightDropout.dropConnect(w, 0.3f, m).square().sum());
                    if (collect) {
                        // frees the Java buffers of any Number operands, then reuses that memory with NaN bits
                        System.gc();
                        Thread.sleep(100);
                        for (int i = 0; i < 4096; i++) {
                            reuse.add(ByteBuffer.allocateDirect(4).putInt(0, 0x7fc00000));
                        }
                    }
                    gc.backward(loss);
                }
                float[][] grads = {qkv.getGradient().toFloatArray(), w.getGradient().toFloatArray()};
                if (reference == null) {
                    reference = grads;
                } else {
                    assertArrayEquals(reference[0], grads[0], 1e-7f, "d penalty / d qkv");
                    assertArrayEquals(reference[1], grads[1], 1e-7f, "d dropConnect / d w");
                }
            }
        }
    }
}
