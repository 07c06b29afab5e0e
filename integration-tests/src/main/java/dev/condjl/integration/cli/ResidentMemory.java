package dev.condjl.integration.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This process's resident memory from {@code /proc/self/status} (Linux): the peak ({@code VmHWM})
 * covers native tensors, the JVM heap and everything else the process touched, so one fresh process
 * per configuration gives a sound peak-memory comparison.
 */
public final class ResidentMemory {

    private ResidentMemory() {}

    /**
     * The peak resident set size so far.
     *
     * @return {@code VmHWM} in MiB
     */
    public static double peakMib() {
        return field("VmHWM:");
    }

    /**
     * The current resident set size.
     *
     * @return {@code VmRSS} in MiB
     */
    public static double currentMib() {
        return field("VmRSS:");
    }

    /**
     * The peak resident set size so far, for reports that must not fail where it cannot be read.
     *
     * @return {@code VmHWM} in bytes, or -1 where {@code /proc/self/status} has none (not Linux)
     */
    public static long peakBytesIfKnown() {
        try {
            return (long) (peakMib() * 1024 * 1024);
        } catch (RuntimeException e) {
            return -1;
        }
    }

    private static double field(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(name)) {
                    // "VmHWM:	  123456 kB"
                    String kib = line.substring(name.length()).trim().split("\\s+")[0];
                    return Long.parseLong(kib) / 1024.0;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/status", e);
        }
        throw new IllegalStateException(name + " not found in /proc/self/status (Linux only)");
    }
}
