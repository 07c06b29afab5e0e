package dev.condjl.cuda;

/**
 * The work given to {@link CudaGraph#capture} failed while it was being captured, typically because it read a device
 * value, copied from host memory (DJL 0.35.1's scalar arithmetic, such as {@code x.mul(2)}, copies its scalar to the
 * device) or synchronised. The cause is the work's own failure; the device stays usable.
 */
public final class GraphCaptureException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /**
     * A failure of captured work.
     *
     * @param cause the work's exception
     */
    public GraphCaptureException(Throwable cause) {
        super("the work could not be captured in a CUDA graph (while capturing, it must not read device values, copy"
                + " from host memory or synchronise): " + cause.getMessage(), cause);
    }

    /**
     * The first line of the work's own failure message (libtorch's messages go on with a C++ trace), for a warning
     * or a report.
     *
     * @return the reason, "" where the failure had no message
     */
    public String reason() {
        return String.valueOf(getCause().getMessage()).lines().findFirst().orElse("");
    }
}
