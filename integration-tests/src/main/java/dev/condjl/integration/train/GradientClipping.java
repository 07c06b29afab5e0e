package dev.condjl.integration.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

import java.util.ArrayList;
import java.util.List;

/**
 * Gradient clipping by global norm, PyTorch's {@code clip_grad_norm_}, which DJL lacks (its optimizers' {@code
 * optClipGrad} clamps each element from above only):
 *
 * <pre>
 *   norm = sqrt(Σ_p ‖g_p‖²)        g_p summed over the training devices, as the parameter server will
 *   if norm > maxNorm:  g_p ← g_p · maxNorm / (norm + 1e-6)     in place, on every device
 * </pre>
 *
 * <p>Call it after the backward passes and before {@code trainer.step()}. The gradients are read through the
 * trainer's {@link ParameterStore} (one copy per device) and scaled in place, which changes the {@code .grad} the
 * optimizer reads. A non-finite norm zeroes every gradient instead (as a mixed-precision loss scaler skips such a
 * step): the caller should then skip {@code trainer.step()}, and the next backward starts from zero.
 */
public final class GradientClipping {

    private GradientClipping() {}

    /**
     * Clips the gradients of some parameters to a global norm.
     *
     * @param store the trainer's parameter store (see {@link RoutedModel#getLastParameterStore()})
     * @param parameters the parameters; those without gradients are skipped
     * @param devices the training devices
     * @param maxNorm the largest allowed norm, {@code > 0}
     * @return the global norm before clipping
     * @throws IllegalArgumentException if {@code maxNorm <= 0}
     */
    public static double clipByGlobalNorm(
            ParameterStore store, Iterable<Parameter> parameters, Device[] devices, double maxNorm) {
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
                    NDArray g = store.getValue(p, device, true).getGradient();
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
        NDArray total = null;
        for (List<NDArray> perDevice : grads) {
            NDArray g = perDevice.get(0);
            for (int d = 1; d < perDevice.size(); d++) {
                g = g.add(perDevice.get(d).toDevice(g.getDevice(), false));
            }
            NDArray sq = g.square().sum();
            total = total == null ? sq : total.add(sq);
        }
        return total == null ? 0 : Math.sqrt(total.getFloat());
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
        for (List<NDArray> perDevice : grads) {
            for (NDArray g : perDevice) {
                g.muli((float) factor);
            }
        }
    }
}
