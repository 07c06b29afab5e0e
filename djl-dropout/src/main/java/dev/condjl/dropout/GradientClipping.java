package dev.condjl.dropout;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.util.Pair;

import dev.condjl.cuda.OptimizerOps;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * Gradient clipping by global norm, PyTorch's {@code clip_grad_norm_}, which DJL lacks (its optimizers' {@code
 * optClipGrad} clamps each element from above only):
 *
 * <pre>
 *   norm = sqrt(Σ_p ‖g_p‖²)        g_p summed over the training devices, as the parameter server will
 *   if norm > maxNorm:  g_p ← g_p · maxNorm / (norm + 1e-6)     in place, on every device
 * </pre>
 *
 * <p>Call it after the backward passes and before {@code trainer.step()}. The gradients are scaled in place, which
 * changes the {@code .grad} the optimizer reads. A non-finite norm zeroes every gradient instead (as a
 * mixed-precision loss scaler skips such a step): the caller should then skip {@code trainer.step()}, and the next
 * backward starts from zero.
 *
 * <p>Where condjl's native kernels run ({@link OptimizerOps}: float32 gradients of one device), the norm of
 * single-device gradients is one native call (summed in float64, so it can differ from libtorch's float32 sums in
 * the last bits) and the scaling one call per device, instead of three libtorch ops per parameter; elsewhere DJL
 * ops compute the same.
 *
 * <p>Why in {@code djl-dropout}: this module is condjl's home of training-loop helpers that sit between DJL's
 * {@code Trainer} and a model ({@link PenalizedLoss}, {@link PenaltyCoefficient}, the weight regularizers), so a
 * user who trains with condjl's regularizers already depends on it. {@code djl-stochastic} is about residual depth
 * and {@code djl-colt5} would drag in the CoLT5 blocks for a generic utility.
 */
public final class GradientClipping {

    private GradientClipping() {}

    /**
     * Clips the gradients of a single-device trainer's parameters to a global norm (on one device every parameter's
     * own array is the one the trainer computes with, so its gradient is the whole gradient).
     *
     * @param trainer a trainer on one device, after its backward pass
     * @param maxNorm the largest allowed norm, {@code > 0}
     * @return the global norm before clipping
     * @throws IllegalArgumentException if {@code maxNorm <= 0} or the trainer has several devices (then pass the
     *     trainer's {@link ParameterStore}, the one the model's {@code forwardInternal} receives, to {@link
     *     #clipByGlobalNorm(ParameterStore, Iterable, Device[], double)})
     */
    public static double clipByGlobalNorm(Trainer trainer, double maxNorm) {
        Device[] devices = trainer.getDevices();
        if (devices.length != 1) {
            throw new IllegalArgumentException("clipByGlobalNorm(trainer, maxNorm) needs a trainer on one device, got "
                    + devices.length + " devices; pass the trainer's ParameterStore (the one your block's"
                    + " forwardInternal receives) to clipByGlobalNorm(store, parameters, devices, maxNorm)");
        }
        List<Parameter> parameters = new ArrayList<>();
        for (Pair<String, Parameter> p : trainer.getModel().getBlock().getParameters()) {
            parameters.add(p.getValue());
        }
        return clip(parameters, devices, maxNorm, (p, device) -> p.getArray().getGradient());
    }

    /**
     * Clips the gradients of some parameters to a global norm, reading the per-device copies through a store.
     *
     * @param store the trainer's parameter store (the one a block's {@code forwardInternal} receives under a
     *     {@code Trainer}), which holds one copy of every parameter per device
     * @param parameters the parameters; those without gradients are skipped
     * @param devices the training devices
     * @param maxNorm the largest allowed norm, {@code > 0}
     * @return the global norm before clipping
     * @throws IllegalArgumentException if {@code maxNorm <= 0}
     */
    public static double clipByGlobalNorm(
            ParameterStore store, Iterable<Parameter> parameters, Device[] devices, double maxNorm) {
        return clip(parameters, devices, maxNorm, (p, device) -> store.getValue(p, device, true).getGradient());
    }

    private static double clip(Iterable<Parameter> parameters, Device[] devices, double maxNorm,
            BiFunction<Parameter, Device, NDArray> gradient) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("maxNorm (" + maxNorm + ") must be > 0");
        }
        try (NDManager scope = NDManager.newBaseManager(devices[0])) {
            List<List<NDArray>> grads = new ArrayList<>();
            for (Parameter p : parameters) {
                if (!p.requiresGradient()) {
                    continue;
                }
                List<NDArray> perDevice = new ArrayList<>(devices.length);
                for (Device device : devices) {
                    NDArray g = gradient.apply(p, device);
                    // gradient wrappers land in the model's manager; own them here so they are closed
                    g.attach(scope);
                    perDevice.add(g);
                }
                grads.add(perDevice);
            }
            double norm = globalNorm(grads);
            if (!Double.isFinite(norm)) {
                zero(grads);
            } else if (norm > maxNorm) {
                scale(grads, maxNorm / (norm + 1e-6));
            }
            return norm;
        }
    }

    /**
     * The global L2 norm of gradients that are summed over devices.
     *
     * @param grads per parameter, its gradient on each device (same shape)
     * @return {@code sqrt(Σ_p ‖Σ_d g_pd‖²)}
     */
    public static double globalNorm(List<List<NDArray>> grads) {
        List<NDArray> single = new ArrayList<>(grads.size());
        for (List<NDArray> perDevice : grads) {
            if (perDevice.size() == 1) {
                single.add(perDevice.get(0));
            }
        }
        if (single.size() == grads.size() && OptimizerOps.supports(single)) {
            try (NDArray sum = OptimizerOps.sumOfSquares(single)) {
                return Math.sqrt(sum.getDouble());
            }
        }
        NDArray total = null;
        for (List<NDArray> perDevice : grads) {
            NDArray g = perDevice.get(0);
            for (int d = 1; d < perDevice.size(); d++) {
                g = g.add(perDevice.get(d).toDevice(g.getDevice(), false));
            }
            NDArray sq = g.square().sum();
            total = total == null ? sq : total.add(sq);
        }
        return total == null ? 0 : Math.sqrt(total.toType(DataType.FLOAT64, false).getDouble());
    }

    /** Sets gradients to 0 in place (multiplying would keep NaN and turn ±Infinity into NaN). */
    private static void zero(List<List<NDArray>> grads) {
        for (List<NDArray> perDevice : grads) {
            for (NDArray g : perDevice) {
                g.set(new NDIndex("..."), 0f);
            }
        }
    }

    /**
     * Multiplies gradients in place.
     *
     * @param grads per parameter, its gradient on each device
     * @param factor the factor
     */
    public static void scale(List<List<NDArray>> grads, double factor) {
        if (grads.isEmpty()) {
            return;
        }
        Map<Device, List<NDArray>> byDevice = new LinkedHashMap<>();
        for (List<NDArray> perDevice : grads) {
            for (NDArray g : perDevice) {
                byDevice.computeIfAbsent(g.getDevice(), d -> new ArrayList<>()).add(g);
            }
        }
        // one native 0-dim factor per device: muli(Number) copies the number from the host for every gradient,
        // which on a GPU waits for the queued work each time
        try (NDManager constants = grads.get(0).get(0).getManager().newSubManager()) {
            for (Map.Entry<Device, List<NDArray>> e : byDevice.entrySet()) {
                if (scaledNatively(e.getValue(), (float) factor)) {
                    continue;
                }
                NDArray f = constants.full(new Shape(), (float) factor, DataType.FLOAT32, e.getKey());
                for (NDArray g : e.getValue()) {
                    g.muli(f);
                }
            }
        }
    }

    /** Scales in one native call where the arrays allow it (validated before any is written); false if not. */
    private static boolean scaledNatively(List<NDArray> arrays, float factor) {
        if (!OptimizerOps.supports(arrays)) {
            return false;
        }
        try {
            OptimizerOps.scaleInPlace(arrays, factor);
            return true;
        } catch (IllegalArgumentException notContiguous) {
            return false;
        }
    }
}
