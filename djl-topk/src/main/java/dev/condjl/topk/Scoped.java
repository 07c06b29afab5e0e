package dev.condjl.topk;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;

import java.util.function.Supplier;

/**
 * Runs a computation whose temporaries must not pile up in the caller's manager: the inputs are moved temporarily
 * into a sub-manager (so every derived array lands there), the results go to the first input's manager and the rest
 * is closed. Autograd is unaffected: libtorch keeps what backward needs.
 */
final class Scoped {

    private Scoped() {}

    /**
     * Computes {@code body} with {@code inputs} temporarily attached to a scope.
     *
     * @param body the computation; reads the inputs through the caller's references
     * @param owner the input whose manager receives the results
     * @param inputs further inputs (nulls skipped) that must not receive temporaries either
     * @return the body's arrays, attached to {@code owner}'s manager
     */
    static NDList compute(Supplier<NDList> body, NDArray owner, NDArray... inputs) {
        NDManager manager = owner.getManager();
        try (NDManager scope = manager.newSubManager()) {
            owner.tempAttach(scope);
            for (NDArray input : inputs) {
                // An array passed twice must be attached once, or it would be "returned" to the closed scope.
                if (input != null && input.getManager() != scope) {
                    input.tempAttach(scope);
                }
            }
            NDList results = body.get();
            results.attach(manager);
            return results;
        }
    }
}
