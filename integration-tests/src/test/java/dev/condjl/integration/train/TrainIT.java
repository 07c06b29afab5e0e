package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's first command, {@code java -jar condjl.jar train}, on a small configuration, then eval. */
class TrainIT {

    @TempDir Path dir;

    @Test
    void jarTrainsResumesAndEvaluates() throws Exception {
        Path run = dir.resolve("run");
        String out = condjl(0, "train", "--steps", "4", "--seq-len", "128", "--dim", "32", "--dim-head", "16",
                "--light-window", "16", "--heavy-q", "16", "--heavy-kv", "16", "--heavy-ff", "16", "--batch", "4",
                "--eval-every", "2", "--eval-size", "8", "--run-dir", run.toString());
        assertTrue(out.contains("accuracy") && out.contains("routing L1"), out);
        assertTrue(Files.size(run.resolve("train.png")) > 10_000);
        out = condjl(0, "train", "--resume", run.resolve("checkpoint").toString(), "--steps", "6", "--batch", "4",
                "--eval-size", "8", "--run-dir", dir.resolve("run2").toString(), "--no-progress");
        assertTrue(out.contains("steps 4..6"), out);
        out = condjl(0, "eval", "--checkpoint", dir.resolve("run2/checkpoint").toString(), "--eval-size", "8");
        assertTrue(out.contains("accuracy"), out);
    }

    /** Runs the jar, checks its exit code, returns its stdout. */
    private String condjl(int expectedCode, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", System.getProperty("condjl.jar")));
        command.addAll(List.of(args));
        Path log = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(command).redirectError(log.toFile()).start();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(expectedCode, p.waitFor(), Files.readString(log));
        return stdout;
    }
}
