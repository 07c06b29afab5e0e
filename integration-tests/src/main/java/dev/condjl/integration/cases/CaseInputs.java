package dev.condjl.integration.cases;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/** Checked access to a case's named input tensors; {@link #rejectUnknown()} catches misnamed tensors. */
public final class CaseInputs {

    private final Map<String, NDArray> tensors;
    private final Set<String> read = new HashSet<>();

    /**
     * Wraps the tensors of an input file.
     *
     * @param tensors the tensors by name
     */
    public CaseInputs(Map<String, NDArray> tensors) {
        this.tensors = tensors;
    }

    /**
     * Returns a required tensor.
     *
     * @param name the reference's argument name
     * @return the tensor
     * @throws IllegalArgumentException if the input file has no such tensor
     */
    public NDArray require(String name) {
        NDArray array = optional(name);
        if (array == null) {
            throw new IllegalArgumentException("missing input tensor '" + name + "' (inputs: "
                    + new TreeSet<>(tensors.keySet()) + ")");
        }
        return array;
    }

    /**
     * Returns an optional tensor.
     *
     * @param name the reference's argument name
     * @return the tensor, or null
     */
    public NDArray optional(String name) {
        read.add(name);
        return tensors.get(name);
    }

    /**
     * Returns an optional tensor that must have a given dtype and shape.
     *
     * @param name the reference's argument name
     * @param type the required dtype
     * @param shape the required shape
     * @return the tensor, or null
     * @throws IllegalArgumentException if the tensor's dtype or shape differs
     */
    public NDArray optional(String name, DataType type, Shape shape) {
        NDArray array = optional(name);
        if (array != null && (array.getDataType() != type || !array.getShape().equals(shape))) {
            throw new IllegalArgumentException("input tensor '" + name + "' must be " + type + " " + shape
                    + ", got " + array.getDataType() + " " + array.getShape());
        }
        return array;
    }

    /**
     * Fails on tensors that no getter asked for.
     *
     * @throws IllegalArgumentException naming the unexpected tensors and the known ones
     */
    public void rejectUnknown() {
        CaseArgs.rejectUnread("unexpected input tensor(s) ", tensors.keySet(), read);
    }

    /**
     * Fails when a checkpoint was given to a module without parameters.
     *
     * @param module the reference name
     * @param weights the {@code --weights} path
     * @throws IllegalArgumentException if {@code weights} is present
     */
    public static void rejectWeights(String module, Optional<Path> weights) {
        if (weights.isPresent()) {
            throw new IllegalArgumentException("module " + module + " has no parameters; drop --weights "
                    + weights.get());
        }
    }
}
