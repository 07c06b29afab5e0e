package dev.condjl.integration.cli;

/** Process-wide settings every condjl program applies before DJL loads. */
public final class Programs {

    private Programs() {}

    /** Keeps DJL offline and quiet: no downloads, no telemetry, no progress bar unless asked. */
    public static void configureEnvironment() {
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("OPT_OUT_TRACKING", "true");
    }
}
