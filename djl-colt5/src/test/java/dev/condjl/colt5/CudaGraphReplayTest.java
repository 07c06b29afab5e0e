package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;

import dev.condjl.cuda.CudaGraph;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

/**
 * The routed blocks in a {@link CudaGraph} (on a GPU): the forward+backward captured once and replayed on a refilled
 * input gives the output and every parameter gradient that eager mode gives for that input. The routing (soft top-k,
 * top-k, gathers and scatters) is decided on the device, so a replay routes the new input's tokens, not the
 * captured ones.
 */
@Tag("gpu")
class CudaGraphReplayTest {

    private static final int DIM = 32;

    @ParameterizedTest
    @ValueSource(strings = {"ConditionalRoutedTransformerBlock", "ConditionalRoutedAutoregressiveAttention"})
    void aReplayGivesTheEagerOutputAndGradientsOfTheNewInput(String name) {
        Device gpu = Device.gpu();
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "DJL sees no GPU");
        assertEquals("", CudaGraph.unavailableReason(gpu), "a GPU machine must support CUDA graphs");
        Engine.getInstance().setRandomSeed(11);
        try (NDManager m = NDManager.newBaseManager(gpu)) {
            Block block = build(name);
            Shape shape = new Shape(2, 64, DIM);
            block.initialize(m, DataType.FLOAT32, shape);
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(shape);
            NDArray weights = m.randomNormal(shape);
            NDArray[] out = new NDArray[1];
            Runnable step = () -> {
                for (Pair<String, Parameter> p : block.getParameters()) {
                    if (p.getValue().getArray().hasGradient()) {
                        NDArray g = p.getValue().getArray().getGradient();
                        g.subi(g);
                    }
                }
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    out[0] = block.forward(ps, new NDList(x), true).head();
                    gc.backward(out[0].mul(weights).sum());
                }
            };
            try (NDManager eager = m.newSubManager()) {  // closed: its graph's accumulators ran on another stream
                x.tempAttach(eager);
                step.run();  // the gradients exist before a captured step zeroes them
            }
            try (CudaGraph graph = CudaGraph.capture(gpu, 2, step)) {
                NDArray replayOut = out[0];
                float[] before = replayOut.toFloatArray();
                CudaGraph.copyInPlace(x, m.randomNormal(shape));
                graph.replay();
                float[] replayed = replayOut.toFloatArray();
                List<float[]> replayedGrads = gradients(block);

                step.run();
                assertClose(out[0].toFloatArray(), replayed, name + " output");
                List<float[]> eagerGrads = gradients(block);
                for (int i = 0; i < eagerGrads.size(); i++) {
                    assertClose(eagerGrads.get(i), replayedGrads.get(i),
                            name + " gradient of " + block.getParameters().keys().get(i));
                }
                assertTrue(maxDifference(before, replayed) > 1e-3, "the replay computed the new input's output");
            }
        }
    }

    private static Block build(String name) {
        if (name.equals("ConditionalRoutedTransformerBlock")) {
            return ConditionalRoutedTransformerBlock.builder().setDim(DIM).setNumHeavyAttnTokensQ(16)
                    .setNumHeavyAttnTokensKv(16).setNumHeavyFfTokens(16).optLightDimHead(8).optLightHeads(4)
                    .optLightWindowSize(16).optHeavyDimHead(8).optHeavyHeads(4).build();
        }
        return ConditionalRoutedAutoregressiveAttention.builder().setDim(DIM).setNumHeavyTokensQ(16)
                .setNumHeavyTokensKv(16).optLightWindowSize(16).optLightDimHead(8).optLightHeads(4)
                .optHeavyDimHead(8).optHeavyHeads(4).build();
    }

    private static List<float[]> gradients(Block block) {
        List<float[]> grads = new ArrayList<>();
        for (Pair<String, Parameter> p : block.getParameters()) {
            grads.add(p.getValue().getArray().getGradient().toFloatArray());
        }
        return grads;
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 1e-30;
        for (float v : expected) {
            scale = Math.max(scale, Math.abs(v));
        }
        double diff = maxDifference(expected, actual);
        assertTrue(diff <= 1e-5 * scale, what + ": max difference " + diff + " of scale " + scale);
    }

    private static double maxDifference(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }
}
