package dev.condjl.colt5;

import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.training.initializer.UniformInitializer;

/** {@code nn.Linear} as PyTorch initialises it: weight and bias uniform in ±1/√fan_in. */
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
