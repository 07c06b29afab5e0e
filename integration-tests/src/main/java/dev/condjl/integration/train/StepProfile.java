package dev.condjl.integration.train;

import java.util.Locale;

/**
 * What {@code condjl train --profile} measured: the median time of a step's two phases, each ended by a device
 * synchronisation, and the op counts of one step traced with PyTorch's profiler.
 *
 * @param timedSteps steps whose phases were timed (every step but the traced one)
 * @param forwardBackwardMs median forward, loss and backward time, until the loss is read
 * @param clipUpdateMs median gradient clipping and optimizer update time, until a parameter value is read
 * @param tracedStep the traced step (0-based)
 * @param trace the chrome-trace file
 * @param forwardOps top-level ops of the traced step's forward
 * @param backwardNodes autograd nodes of its backward
 */
public record StepProfile(int timedSteps, double forwardBackwardMs, double clipUpdateMs, int tracedStep, String trace,
        int forwardOps, int backwardNodes) {

    /**
     * The report's line.
     *
     * @return e.g. {@code profile     median of 99 steps: forward+backward 25.1 ms, clip+update 2.5 ms; ...}
     */
    String toText() {
        return String.format(Locale.ROOT, "profile     median of %d steps: forward+backward %.2f ms, clip+update %.2f ms;"
                        + " step %d traced to %s: %d forward ops, %d autograd nodes%n", timedSteps, forwardBackwardMs,
                clipUpdateMs, tracedStep, trace, forwardOps, backwardNodes);
    }
}
