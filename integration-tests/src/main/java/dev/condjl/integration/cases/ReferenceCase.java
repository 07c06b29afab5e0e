package dev.condjl.integration.cases;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import com.google.gson.JsonObject;

import dev.condjl.topk.checkpoint.ReadOptions;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * One reference function or module that {@code condjl run} can execute, registered in {@link ReferenceCases}.
 * Tensor names follow the reference's argument names (inputs) and return fields (outputs).
 */
public interface ReferenceCase {

    /**
     * Returns the reference name, the value of {@code "module"} in a case file.
     *
     * @return e.g. {@code coor_descent}
     */
    String name();

    /**
     * Runs the case.
     *
     * @param manager the manager of the inputs and outputs
     * @param config the reference's keyword arguments (never null; empty when absent); read it with
     *     {@link CaseArgs}, which rejects unknown keys
     * @param forward non-tensor forward keyword arguments (never null; empty when absent)
     * @param inputs named input tensors; read them with {@link CaseInputs}, which rejects unknown names
     * @param weights a checkpoint for modules with parameters
     * @param weightOptions which state dict of {@code weights} to read and which key prefix to strip
     * @return named output tensors, in the order they should be written
     * @throws IOException if the weights cannot be read
     * @throws IllegalArgumentException for a bad config, a missing or unexpected tensor, or a bad shape
     */
    Map<String, NDArray> run(NDManager manager, JsonObject config, JsonObject forward, Map<String, NDArray> inputs,
            Optional<Path> weights, ReadOptions weightOptions) throws IOException;
}
