package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;

/**
 * A CUDA graph of DJL work: every kernel that some DJL code queues on a GPU (forward, the backward of a
 * {@link ai.djl.training.GradientCollector}, condjl's native ops, an optimizer update), recorded once and then
 * {@linkplain #replay() replayed} with one launch. A replay costs the host a few microseconds instead of the tens of
 * microseconds that each of the work's ops and autograd nodes costs, which is what sets the pace of a small model on
 * a fast GPU. It is libtorch's own {@code at::cuda::CUDAGraph} (what PyTorch's {@code torch.cuda.graph} uses), driven
 * from libcondjl_ops, because DJL 0.35.1 does not expose it.
 *
 * <p>What a replay does is exactly what the captured run queued, on the same memory:
 * <ul>
 *   <li>It reads the arrays the captured run read: refill an input in place ({@link #copyInPlace}) before a
 *       replay, never replace it by a new array.</li>
 *   <li>It writes where the captured run wrote. Arrays the run created (outputs, a loss) hold every replay's
 *       result as long as the caller keeps them open; the run's temporaries live in a memory pool that libtorch
 *       keeps for the graph until {@link #close()}. Gradients that existed before the capture accumulate in place,
 *       as in eager mode, so zero them between replays (inside the work, or by the optimizer step).</li>
 *   <li>Host decisions are frozen: shapes, which branch the Java code took, scalars passed as arguments. A value
 *       read from the device cannot steer a replay, and random numbers come from libtorch's CUDA generator, which
 *       advances on each replay.</li>
 * </ul>
 * The work therefore must not read device values to the host, copy from host memory or synchronise while it is
 * captured; CUDA refuses such calls, and {@link #capture} then throws a {@link GraphCaptureException} that names the
 * failure and leaves the device usable. DJL 0.35.1's arithmetic with a Java number ({@code x.mul(2)},
 * {@code x.add(1)}, ...) copies the number to the device, so it cannot be captured; use an array made before the
 * capture. Arrays of an eager forward that are still open keep its autograd graph, whose gradient accumulators
 * remember the stream they ran on: close them (run eager steps in a sub-manager) before capturing a backward. The
 * warm-up runs before the capture (on the graph's stream, as PyTorch recommends) let libtorch and the JIT make their
 * one-time allocations and decisions outside the graph; the work runs {@code warmupRuns + 1} times in all.
 *
 * <p>Not thread-safe: capture on one thread; a replay runs on the calling thread's current stream (DJL's default).
 */
public final class CudaGraph implements AutoCloseable {

    /** Whether this thread is inside {@link #capture}'s work: its warm-up runs or the captured run. */
    private static final ThreadLocal<Boolean> IN_CAPTURE = ThreadLocal.withInitial(() -> false);

    private long handle;

    private CudaGraph(long handle) {
        this.handle = handle;
    }

    /**
     * Why graphs cannot be captured on {@code device}: not a GPU, not DJL's PyTorch engine, libcondjl_ops not
     * loaded or built without CUDA, or a libtorch that lacks what a graph needs.
     *
     * @param device the device to capture on
     * @return the reason, or "" when {@link #capture} can run there
     */
    public static String unavailableReason(Device device) {
        if (device == null || !device.isGpu()) {
            return "CUDA graphs need a GPU device, got " + device;
        }
        if (!"PyTorch".equals(Engine.getInstance().getEngineName())) {
            return "CUDA graphs need DJL's PyTorch engine, the default engine is "
                    + Engine.getInstance().getEngineName();
        }
        Engine.getEngine("PyTorch");  // libtorch_cuda must be loaded before the symbols are looked up
        if (!CondjlOps.isAvailable()) {
            return CondjlOps.unavailableReason();
        }
        if (!CondjlOps.cudaCompiled()) {
            return "libcondjl_ops was built without CUDA";
        }
        return nMissing();
    }

    /**
     * Runs {@code work} {@code warmupRuns} times and then once more while recording the GPU work it queues, all on a
     * stream of the graph's own that is the calling thread's current CUDA stream meanwhile (ordered after the work
     * queued before and before the work queued after).
     *
     * @param device the GPU the work runs on
     * @param warmupRuns runs before the captured one, at least 1 (3 is PyTorch's usual choice)
     * @param work the DJL work; it must not read device values, copy from the host or synchronise (see the class
     *     comment)
     * @return the graph, ready to replay
     * @throws IllegalArgumentException if {@code warmupRuns < 1}
     * @throws IllegalStateException where {@link #unavailableReason} is not empty, or when a warm-up run failed
     * @throws GraphCaptureException when the captured run failed (with its failure as the cause)
     */
    public static CudaGraph capture(Device device, int warmupRuns, Runnable work) {
        if (warmupRuns < 1) {
            throw new IllegalArgumentException("warmupRuns must be >= 1, got " + warmupRuns);
        }
        String reason = unavailableReason(device);
        if (!reason.isEmpty()) {
            throw new IllegalStateException("cannot capture a CUDA graph: " + reason);
        }
        CudaGraph graph = new CudaGraph(nCreate(device.getDeviceId()));
        try {
            nEnterStream(graph.handle);
            IN_CAPTURE.set(true);
            try {
                for (int i = 0; i < warmupRuns; i++) {
                    work.run();
                }
                nBeginCapture(graph.handle);
                try {
                    work.run();
                } catch (RuntimeException | Error e) {
                    nAbandonCapture(graph.handle);
                    throw new GraphCaptureException(e);
                }
                nEndCapture(graph.handle);
            } finally {
                IN_CAPTURE.set(false);
                nLeaveStream(graph.handle);
            }
            return graph;
        } catch (RuntimeException | Error e) {
            graph.close();
            throw e;
        }
    }

    /**
     * Whether the calling thread runs {@link #capture}'s work now (a warm-up run or the captured one, which take the
     * same paths). Blocks that choose between equivalent forms by what they cost the host can ask it: a replay costs
     * the host nothing per op, so there the form with less GPU work wins.
     *
     * @return true inside the work given to {@code capture}
     */
    public static boolean isCapturing() {
        return IN_CAPTURE.get();
    }

    /**
     * Queues the captured work again, on the calling thread's current stream of the graph's device.
     *
     * @throws IllegalStateException if the graph is closed
     */
    public void replay() {
        if (handle == 0) {
            throw new IllegalStateException("the CUDA graph is closed");
        }
        nReplay(handle);
    }

    /**
     * Copies {@code source}'s values into {@code target}'s memory, the way to refill a graph's input between replays
     * (DJL 0.35.1's {@code NDArray.set(Buffer)} gives a GPU array new memory, which a replay would not read). Runs
     * on the calling thread's current stream; a source on the host is copied synchronously.
     *
     * @param target a PyTorch-engine array, not requiring a gradient
     * @param source an array of the same shape and data type, on any device
     * @throws IllegalArgumentException if the shapes or data types differ, or an array is not a PyTorch one
     */
    public static void copyInPlace(NDArray target, NDArray source) {
        if (!(target instanceof PtNDArray t) || !(source instanceof PtNDArray s)) {
            throw new IllegalArgumentException("copyInPlace needs PyTorch-engine arrays, got "
                    + target.getClass().getSimpleName() + " and " + source.getClass().getSimpleName());
        }
        if (!CondjlOps.isAvailable()) {
            throw new IllegalStateException("libcondjl_ops is unavailable: " + CondjlOps.unavailableReason());
        }
        nCopyInPlace(t.getHandle(), s.getHandle());
    }

    /** Frees the graph and hands its memory pool back to libtorch (arrays still open keep their blocks). Idempotent. */
    @Override
    public void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            nDestroy(h);
        }
    }

    private static native String nMissing();

    private static native long nCreate(int device);

    private static native void nEnterStream(long handle);

    private static native void nBeginCapture(long handle);

    private static native void nEndCapture(long handle);

    private static native void nAbandonCapture(long handle);

    private static native void nLeaveStream(long handle);

    private static native void nReplay(long handle);

    private static native void nCopyInPlace(long target, long source);

    private static native void nDestroy(long handle);
}
