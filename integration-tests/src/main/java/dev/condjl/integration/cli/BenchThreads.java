package dev.condjl.integration.cli;

import picocli.CommandLine.Option;

/** The {@code --threads} option of the benchmarks (a picocli mixin). */
final class BenchThreads {

    /** The system property DJL's PyTorch engine reads its intra-op thread count from when it starts. */
    static final String PROPERTY = "ai.djl.pytorch.num_threads";

    @Option(names = "--threads",
            description = "PyTorch intra-op threads (default: the engine's). On a busy CPU, 1 avoids spinning threads.")
    Integer threads;

    /** Sets the thread count for an engine that has not started yet in this JVM (in a fresh condjl process). */
    void apply() {
        if (threads != null) {
            System.setProperty(PROPERTY, threads.toString());
        }
    }

    /**
     * The thread count for the log.
     *
     * @return {@code --threads}, else the property, else {@code "default"}
     */
    String describe() {
        return threads != null ? threads.toString() : System.getProperty(PROPERTY, "default");
    }
}
