package dev.condjl.integration.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's peak resident memory: Linux's {@code VmHWM}, which counts the JVM heap and native tensors alike. */
public final class PeakMemory {

    private PeakMemory() {}

    /**
     * Reads {@code VmHWM} from {@code /proc/self/status}.
     *
     * @return the peak resident set in bytes, or -1 where the file does not exist (not Linux)
     */
    public static long peakResidentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
