package dev.condjl.cuda;

import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Whether a libtorch op that condjl calls through the dispatcher can run in this process: decided once, on first
 * ask, from its prerequisites (library loaded, entry points exported) and then a probe call with a known answer;
 * reported once when it cannot.
 */
final class ProbedOp {

    private final Supplier<String> prerequisites;
    private final Supplier<String> probe;
    private final Consumer<String> report;
    private volatile String reason;

    /**
     * Creates the check; nothing runs until {@link #unavailableReason}.
     *
     * @param prerequisites "" when the op's entry points are there, else why not
     * @param probe "" when a call with a known answer returned it, else why not
     * @param report told the reason once, when it is not ""
     */
    ProbedOp(Supplier<String> prerequisites, Supplier<String> probe, Consumer<String> report) {
        this.prerequisites = prerequisites;
        this.probe = probe;
        this.report = report;
    }

    /**
     * Why the op cannot run here.
     *
     * @return the reason, or "" when usable
     */
    String unavailableReason() {
        String r = reason;
        if (r == null) {
            r = prerequisites.get();
            if (r.isEmpty()) {
                r = probe.get();
            }
            if (!r.isEmpty()) {
                report.accept(r);
            }
            reason = r;
        }
        return r;
    }
}
