package dev.condjl.colt5;

import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
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
}
