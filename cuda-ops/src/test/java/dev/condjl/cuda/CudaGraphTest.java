package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link CudaGraph}: a replay recomputes the captured forward and backward on the input's new contents, as eager mode
 * computes them; work that reads a device value while captured fails with a message that says so and leaves the
 * device usable; a device or engine that cannot hold a graph is refused up front.
 */
class CudaGraphTest {

    @Test
    void theCpuIsRefusedUpFront() {
        assertTrue(CudaGraph.unavailableReason(Device.cpu()).contains("need a GPU"));
        assertFalse(CudaGraph.isCapturing());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CudaGraph.capture(Device.cpu(), 1, () -> { }));
        assertTrue(e.getMessage().contains("need a GPU"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CudaGraph.capture(Device.gpu(), 0, () -> { }));
    }

    @Test
    @Tag("gpu")
    void aReplayRecomputesForwardAndBackwardOnTheRefilledInput() {
        assumeGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray x = m.randomNormal(new Shape(64, 32));
            NDArray w = m.randomNormal(new Shape(32, 16));
            w.setRequiresGradient(true);
            try (NDManager eager = m.newSubManager();  // closed: its graph's accumulators ran on another stream
                    GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                x.tempAttach(eager);
                gc.backward(x.matMul(w).sum());  // w's gradient exists before the step zeroes it
            }
            NDArray[] loss = new NDArray[1];
            Runnable step = () -> {
                NDArray grad = w.getGradient();
                grad.subi(grad);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    loss[0] = x.matMul(w).tanh().square().sum();
                    gc.backward(loss[0]);
                }
            };
            try (CudaGraph graph = CudaGraph.capture(Device.gpu(), 2, step)) {
                NDArray replayLoss = loss[0];
                NDArray fresh = m.randomNormal(new Shape(64, 32));
                CudaGraph.copyInPlace(x, fresh);
                graph.replay();
                float replayed = replayLoss.getFloat();
                float[] replayedGrad = w.getGradient().toFloatArray();

                step.run();
                assertEquals(loss[0].getFloat(), replayed, 1e-4f * Math.abs(replayed));
                assertArrayEquals(w.getGradient().toFloatArray(), replayedGrad, 1e-4f);
                graph.replay();
                assertEquals(replayed, replayLoss.getFloat(), "a second replay writes the same loss");
            }
        }
    }

    @Test
    void copyInPlaceWritesTheTargetsOwnMemoryAndChecksShapeAndType() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray target = m.zeros(new Shape(2, 3));
            NDArray view = target.reshape(6);
            CudaGraph.copyInPlace(target, m.arange(6f).reshape(2, 3));
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, view.toFloatArray(), "a view of the old memory sees it");
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                    () -> CudaGraph.copyInPlace(target, m.zeros(new Shape(3, 2))));
            assertTrue(shape.getMessage().contains("(2, 3)") && shape.getMessage().contains("(3, 2)"),
                    shape.getMessage());
            IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                    () -> CudaGraph.copyInPlace(target, m.zeros(new Shape(2, 3), DataType.INT64)));
            assertTrue(type.getMessage().contains("int64"), type.getMessage());
        }
    }

    @Test
    @Tag("gpu")
    void aHostReadWhileCapturingFailsAndTheDeviceStaysUsable() {
        assumeGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray x = m.arange(8f);
            GraphCaptureException e = assertThrows(GraphCaptureException.class,
                    () -> CudaGraph.capture(Device.gpu(), 1, () -> x.mul(x).sum().getFloat()));
            assertTrue(e.getMessage().contains("could not be captured"), e.getMessage());
            assertEquals(140f, x.mul(x).sum().getFloat(), "eager ops run after the failed capture");
        }
    }

    @Test
    @Tag("gpu")
    void arithmeticWithAJavaNumberCannotBeCaptured() {
        assumeGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray x = m.ones(new Shape(4));
            GraphCaptureException e = assertThrows(GraphCaptureException.class,
                    () -> CudaGraph.capture(Device.gpu(), 1, () -> x.muli(2)));
            assertTrue(e.getMessage().contains("CPU and CUDA"), e.getMessage());
        }
    }

    @Test
    @Tag("gpu")
    void aClosedGraphRefusesToReplay() {
        assumeGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray x = m.ones(new Shape(4));
            NDArray two = m.full(new Shape(4), 2f);
            List<Boolean> capturing = new ArrayList<>();
            CudaGraph graph = CudaGraph.capture(Device.gpu(), 1, () -> {
                capturing.add(CudaGraph.isCapturing());
                x.muli(two);
            });
            assertEquals(List.of(true, true), capturing, "the warm-up run and the captured run see it");
            assertFalse(CudaGraph.isCapturing(), "after the capture");
            graph.replay();
            graph.close();
            graph.close();
            assertThrows(IllegalStateException.class, graph::replay);
            assertEquals(4 * 4f, x.sum().getFloat(), "the warm-up run and the replay doubled x; the captured run only"
                    + " recorded");
        }
    }

    private static void assumeGraphs() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "DJL sees no GPU");
        String reason = CudaGraph.unavailableReason(Device.gpu());
        assertEquals("", reason, "a GPU machine must support CUDA graphs");
    }
}
