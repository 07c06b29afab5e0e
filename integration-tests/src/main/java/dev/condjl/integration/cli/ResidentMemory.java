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
final class ResidentMemory {

    private ResidentMemory() {}

    /**
     * The peak resident set size so far.
     *
     * @return {@code VmHWM} in MiB
     */
    static double peakMib() {
        return field("VmHWM:");
    }

    /**
     * The current resident set size.
     *
     * @return {@code VmRSS} in MiB
     */
    static double currentMib() {
        return field("VmRSS:");
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
