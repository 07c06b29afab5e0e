package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.Arrays;

/**
 * libtorch's {@code aten::linear}, {@code y = x·Wᵀ + b}, called through its dispatcher so that autograd records it.
 * For an input of three or more dimensions libtorch flattens it and adds the bias inside the matrix product (one
 * {@code addmm}), where DJL's {@code Linear} runs a transpose, a batched {@code matmul} and an in-place add as three
 * ops, and its backward one node more. Values equal DJL's to float32 rounding (the bias is added inside the product's
 * epilogue instead of afterwards).
 *
 * <p>Every argument is a tensor, so the dispatcher entry point of libtorch 2.7.1 (the CPU engine's) takes it as
 * well as 2.11's.
 */
public final class FusedLinear {

    private static final Logger LOG = LogManager.getLogger(FusedLinear.class);
    private static final ProbedOp OP = new ProbedOp(
            CondjlOps::dispatcherUnavailable,
            FusedLinear::probe,
            r -> LOG.info("fused linear is unavailable ({}); linear layers use DJL's operations", r));

    private FusedLinear() {}

    /**
     * Whether {@link #linear} runs here: the library loaded, this libtorch exports the dispatcher entry points, and
     * a probe call returned the closed-form values. Decided once per process; when unavailable, one line is logged
     * at INFO level.
     *
     * @return the reason, or "" when usable
     */
    public static String unavailableReason() {
        return OP.unavailableReason();
    }

    /**
     * Whether {@link #linear} takes these arguments: it is available and they pass its checks.
     *
     * @param x (..., in) input
     * @param weight (out, in) weight
     * @param bias null, or (out) bias
     * @return true when a call with them would succeed
     */
    public static boolean supports(NDArray x, NDArray weight, NDArray bias) {
        return problem(x, weight, bias) == null && unavailableReason().isEmpty();
    }

    /**
     * {@code x·Wᵀ + b} in one op that autograd records (gradients reach {@code x}, {@code weight} and {@code bias}
     * where they require them).
     *
     * @param x (..., in) float32 input, PyTorch engine, at least one dimension
     * @param weight (out, in) float32 on {@code x}'s device
     * @param bias null, or (out) float32 on {@code x}'s device
     * @return (..., out) in {@code x}'s manager
     * @throws IllegalArgumentException on a shape, dtype or device that does not fit
     * @throws IllegalStateException when the op is unavailable ({@link #unavailableReason})
     */
    public static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        String problem = problem(x, weight, bias);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        String reason = unavailableReason();
        if (!reason.isEmpty()) {
            throw new IllegalStateException("fused linear is unavailable: " + reason);
        }
        return call((PtNDArray) x, (PtNDArray) weight, (PtNDArray) bias);
    }

    private static NDArray call(PtNDArray x, PtNDArray weight, PtNDArray bias) {
        return new PtNDArray(x.getManager(),
                nLinear(x.getHandle(), weight.getHandle(), bias == null ? 0L : bias.getHandle()));
    }

    /** What is wrong with these arguments, or null. */
    private static String problem(NDArray x, NDArray weight, NDArray bias) {
        String problem = operand(x, "x", x);
        if (problem == null && x.getShape().dimension() == 0) {
            problem = "x must have at least one dimension, got " + x.getShape();
        }
        if (problem == null) {
            problem = operand(weight, "weight", x);
        }
        if (problem == null && (weight.getShape().dimension() != 2
                || weight.getShape().get(1) != x.getShape().tail())) {
            problem = "weight " + weight.getShape() + " must be (out, " + x.getShape().tail() + ") for x "
                    + x.getShape();
        }
        if (problem == null && bias != null) {
            problem = operand(bias, "bias", x);
            if (problem == null && !bias.getShape().equals(new Shape(weight.getShape().get(0)))) {
                problem = "bias " + bias.getShape() + " must be (" + weight.getShape().get(0) + ") for weight "
                        + weight.getShape();
            }
        }
        return problem;
    }

    private static String operand(NDArray a, String name, NDArray x) {
        String problem = CondjlOps.notFloat32(a, name);
        if (problem == null && a != x && !a.getDevice().equals(x.getDevice())) {
            problem = name + " is on " + a.getDevice() + " but x is on " + x.getDevice();
        }
        return problem;
    }

    /** One call whose answer is known: "" where it works, else why not. */
    private static String probe() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            // x (1, 2, 2) · W (3, 2)ᵀ + b: rows (1, 2) and (3, 4)
            NDArray x = m.create(new float[] {1, 2, 3, 4}, new Shape(1, 2, 2));
            NDArray w = m.create(new float[] {1, 0, 0, 1, 1, 1}, new Shape(3, 2));
            NDArray b = m.create(new float[] {10, 20, 30});
            float[] got = call((PtNDArray) x, (PtNDArray) w, (PtNDArray) b).toFloatArray();
            float[] want = {11, 22, 33, 13, 24, 37};
            return Arrays.equals(got, want) ? ""
                    : "probe call returned " + Arrays.toString(got) + ", expected " + Arrays.toString(want);
        } catch (RuntimeException e) {
            return "probe call failed: " + e.getMessage();
        }
    }

    private static native long nLinear(long x, long weight, long bias);
}
