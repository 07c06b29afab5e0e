package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * A transform applied to a parameter's value every time a block reads it in a forward pass (PyTorch's
 * {@code register_parametrization}, RETURNN's {@code rf.register_parametrization} with
 * {@code keep_existing_param=True}).
 *
 * <p>The original parameter stays where it is, under its own name, and is what the optimizer updates and what
 * {@code saveParameters} writes; only the value a forward pass sees is transformed. Register a parametrization on a
 * block with {@link Parametrized}. A parametrization owns no parameters.
 */
@FunctionalInterface
public interface Parametrization {

    /**
     * Transforms one read of a parameter.
     *
     * <p>Contract: the result has the value's shape; temporaries and the result are created in {@code manager} and
     * the value is never the first operand of a binary op (results belong to the first operand's manager, and the
     * value may live in the model's manager: write {@code mask.mul(value)}, not {@code value.mul(mask)}). Return
     * {@code value} itself to leave it unchanged (for example in eval).
     *
     * @param value the parameter's value on the forward pass's device, any shape; differentiable in training
     * @param manager a manager scoped to the current batch on that device, for temporaries and the result
     * @param training true for a training forward pass
     * @return the value the block computes with, same shape as {@code value}
     */
    NDArray apply(NDArray value, NDManager manager, boolean training);
}
