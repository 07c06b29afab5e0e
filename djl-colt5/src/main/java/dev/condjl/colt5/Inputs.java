package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.PairList;

import java.util.ArrayList;
import java.util.List;

/**
 * Reading and checking the arguments of the blocks' {@code forward(NDList, PairList)} entry points.
 *
 * <p>Tensors are found by name when any input array carries a name (the reference's argument names: {@code x},
 * {@code mask}, {@code context}, {@code context_mask}, {@code routing_tokens}), else by position. Non-tensor
 * arguments ({@code num_heavy_tokens}, ...) come from the params pair list under the reference's keyword names.
 */
final class Inputs {

    private Inputs() {}

    /**
     * An input by name, or by position when no input is named.
     *
     * @param inputs the forward inputs
     * @param name the reference's argument name
     * @param position its position in an unnamed list
     * @return the array, or null if absent
     */
    static NDArray tensor(NDList inputs, String name, int position) {
        if (isNamed(inputs)) {
            return inputs.contains(name) ? inputs.get(name) : null;
        }
        return position < inputs.size() ? inputs.get(position) : null;
    }

    /**
     * A required input.
     *
     * @param inputs the forward inputs
     * @param name the reference's argument name
     * @param position its position in an unnamed list
     * @return the array
     * @throws IllegalArgumentException if it is absent; the message names it by position and name and lists what
     *     was given ("input 0 'x' is missing; got only 'mask'")
     */
    static NDArray required(NDList inputs, String name, int position) {
        NDArray a = tensor(inputs, name, position);
        if (a == null) {
            throw new IllegalArgumentException("input " + position + " '" + name + "' is missing; got " + given(inputs));
        }
        return a;
    }

    /** What a caller passed, for messages: {@code only 'mask'}, {@code only 1 input, of shape (2, 8)}. */
    private static String given(NDList inputs) {
        if (inputs.isEmpty()) {
            return "no inputs";
        }
        List<String> parts = new ArrayList<>();
        if (isNamed(inputs)) {
            for (NDArray a : inputs) {
                parts.add(hasName(a) ? "'" + a.getName() + "'" : "an unnamed " + a.getShape());
            }
            return "only " + String.join(", ", parts);
        }
        for (NDArray a : inputs) {
            parts.add(a.getShape().toString());
        }
        return "only " + inputs.size() + (inputs.size() == 1 ? " input, of shape " : " inputs, of shapes ")
                + String.join(", ", parts);
    }

    private static boolean isNamed(NDList inputs) {
        return inputs.stream().anyMatch(Inputs::hasName);
    }

    private static boolean hasName(NDArray a) {
        return a.getName() != null && !a.getName().isEmpty();
    }

    /**
     * An integer keyword argument.
     *
     * @param params the forward params (may be null)
     * @param key the reference's keyword name
     * @return the value, or null if absent
     * @throws IllegalArgumentException if the value is not an integral number
     */
    static Integer integer(PairList<String, Object> params, String key) {
        Object v = params == null ? null : params.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
            return n.intValue();
        }
        throw new IllegalArgumentException(key + " must be an integer, got " + v);
    }

    /**
     * A boolean keyword argument.
     *
     * @param params the forward params (may be null)
     * @param key the reference's keyword name
     * @return the value, false if absent
     */
    static boolean flag(PairList<String, Object> params, String key) {
        Object v = params == null ? null : params.get(key);
        return v != null && (v instanceof Boolean b ? b : Boolean.parseBoolean(v.toString()));
    }

    /**
     * Checks a token tensor {@code (b, n, dim)}.
     *
     * @param name argument name for the message
     * @param x the tensor
     * @param dim expected feature size
     * @throws IllegalArgumentException if the rank or the last axis is wrong
     */
    static void checkTokens(String name, NDArray x, int dim) {
        Shape s = x.getShape();
        if (s.dimension() != 3) {
            throw new IllegalArgumentException(name + " must have shape (batch, seq, " + dim + "), got " + s);
        }
        checkLastDim(name, x, dim);
    }

    /**
     * Checks the last axis.
     *
     * @param name argument name for the message
     * @param x the tensor
     * @param dim expected size of the last axis
     * @throws IllegalArgumentException if it differs
     */
    static void checkLastDim(String name, NDArray x, long dim) {
        Shape s = x.getShape();
        if (s.dimension() == 0 || s.tail() != dim) {
            throw new IllegalArgumentException(name + " must have last dimension " + dim + ", got shape " + s);
        }
    }

    /**
     * Checks a key-padding mask against its tokens.
     *
     * @param name argument name for the message
     * @param mask null, or a boolean {@code (b, n)} mask, true = valid
     * @param x the {@code (b, n, d)} tokens it masks
     * @throws IllegalArgumentException if the dtype or shape is wrong
     */
    static void checkMask(String name, NDArray mask, NDArray x) {
        if (mask == null) {
            return;
        }
        Shape expected = x.getShape().slice(0, 2);
        if (mask.getDataType() != DataType.BOOLEAN || !mask.getShape().equals(expected)) {
            throw new IllegalArgumentException(name + " must be a boolean mask of shape " + expected + ", got "
                    + mask.getDataType() + " " + mask.getShape());
        }
    }

    /**
     * Checks a routed-token count.
     *
     * @param name argument name for the message
     * @param k the count
     * @throws IllegalArgumentException if {@code k < 1}
     */
    static void checkCount(String name, int k) {
        if (k < 1) {
            throw new IllegalArgumentException(name + " (" + k + ") must be >= 1");
        }
    }
}
