package dev.condjl.cuda;

/**
 * libtorch's process-wide switch for TF32 in float32 matrix products on CUDA ({@code at::Context::setAllowTF32CuBLAS},
 * PyTorch's {@code torch.backends.cuda.matmul.allow_tf32}), which DJL 0.35.1 does not expose. With it on, cuBLAS may
 * round the inputs of a float32 product to TF32 (10 bits of mantissa; sums stay float32) and use the tensor cores:
 * faster on Ampere and later GPUs, with relative errors near 10⁻³ instead of 10⁻⁶. Off is libtorch's default, unless
 * the process was started with {@code TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1}, which turns it on for good. The CPU
 * ignores it. Every thread and every DJL model of the process sees the change.
 *
 * <p>The switch is a C++ symbol of {@code libtorch_cpu}, not of its stable C shim; a libtorch that does not export
 * it makes {@link #tf32UnavailableReason} say so.
 */
public final class MatrixProducts {

    private MatrixProducts() {}

    /**
     * Whether {@link #setTf32} and {@link #tf32} can run: the library loaded, and libtorch exports the switch.
     *
     * @return the reason, or "" when usable
     */
    public static String tf32UnavailableReason() {
        if (!CondjlOps.isAvailable()) {
            return CondjlOps.unavailableReason();
        }
        try {
            nTf32();
            return "";
        } catch (IllegalStateException e) {
            return e.getMessage();
        }
    }

    /**
     * Allows or forbids TF32 in the float32 matrix products that libtorch runs on CUDA from now on.
     *
     * @param allow true to allow TF32
     * @throws IllegalStateException where {@link #tf32UnavailableReason} is not empty
     */
    public static void setTf32(boolean allow) {
        requireSwitch();
        nSetTf32(allow);
    }

    /**
     * Whether libtorch allows TF32 in float32 matrix products on CUDA now.
     *
     * @return libtorch's answer, {@code TORCH_ALLOW_TF32_CUBLAS_OVERRIDE} included
     * @throws IllegalStateException where {@link #tf32UnavailableReason} is not empty
     */
    public static boolean tf32() {
        requireSwitch();
        return nTf32();
    }

    private static void requireSwitch() {
        String reason = tf32UnavailableReason();
        if (!reason.isEmpty()) {
            throw new IllegalStateException("TF32 switch unavailable: " + reason);
        }
    }

    private static native void nSetTf32(boolean allow);

    private static native boolean nTf32();
}
