package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.training.initializer.UniformInitializer;
import dev.condjl.cuda.FusedLinear;

/**
 * {@code nn.Linear} as PyTorch initialises it (weight and bias uniform in ±1/√fan_in), and applied as one libtorch op
 * where it can be ({@link #apply}).
 */
final class Linears {

    private Linears() {}

    /**
     * A linear layer {@code y = x·Wᵀ (+ b)} with weight {@code (out, in)}.
     *
     * @param in input features
     * @param out output features
     * @param bias whether it has a bias
     * @return the layer, uninitialised
     */
    static Linear of(long in, long out, boolean bias) {
        Linear linear = Linear.builder().setUnits(out).optBias(bias).build();
        UniformInitializer init = new UniformInitializer((float) (1 / Math.sqrt(in)));
        linear.setInitializer(init, Parameter.Type.WEIGHT);
        if (bias) {
            linear.setInitializer(init, Parameter.Type.BIAS);
        }
        return linear;
    }

    /**
     * The layer's {@code x·Wᵀ + b}: {@link FusedLinear} (one op, one autograd node fewer) where it takes the
     * arguments, else DJL's {@code Linear.linear}, the op of the layer's own forward. The weight and bias are read
     * through {@code ps} either way, so a parametrized store ({@code Parametrized}) and each device's mirror apply.
     *
     * @param ps the parameter store
     * @param linear an initialised layer
     * @param x (..., in) input
     * @param training whether in training
     * @return (..., out)
     */
    static NDArray apply(ParameterStore ps, Linear linear, NDArray x, boolean training) {
        Parameter bias = linear.getDirectParameters().get("bias");
        NDArray w = ps.getValue(linear.getDirectParameters().get("weight"), x.getDevice(), training);
        NDArray b = bias == null ? null : ps.getValue(bias, x.getDevice(), training);
        return FusedLinear.supports(x, w, b)
                ? FusedLinear.linear(x, w, b)
                : Linear.linear(x, w, b).head();
    }

    /**
     * Makes a layer start at zero: weight (and bias) initialised to 0 instead of PyTorch's uniform draw. Set before
     * the layer is initialised; an initializer set later for all weights (a training configuration's) replaces it.
     *
     * @param linear the layer
     */
    static void zeroInit(Linear linear) {
        ConstantInitializer zero = new ConstantInitializer(0f);
        linear.setInitializer(zero, Parameter.Type.WEIGHT);
        linear.setInitializer(zero, Parameter.Type.BIAS);
    }
}
