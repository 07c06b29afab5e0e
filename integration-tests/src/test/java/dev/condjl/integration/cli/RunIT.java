package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/** {@code java -jar condjl.jar run} from the packaged jar, on a case file and inputs outside the jar. */
class RunIT {

    /** Log4j lines (e.g. DJL's CUDA probe warning on machines without a usable GPU) are not the error line. */
    private static final Pattern LOG_LINE = Pattern.compile("^\\d\\d:\\d\\d:\\d\\d (TRACE|DEBUG|INFO|WARN) ");

    @TempDir Path dir;

    @Test
    void jarRunsTheCoorDescentCaseLikeTheReference() throws Exception {
        Path spec = RunFixtures.copyExample("coor_descent", dir);
        Path output = dir.resolve("out.safetensors");
        Result result = condjl("run", "--spec", spec.toString(), "--input",
                dir.resolve("coor_descent.in.safetensors").toString(), "--output", output.toString());
        assertEquals(0, result.code, result.stderr);
        assertTrue(result.stdout.contains("grad_s float32 (2, 3, 16)"), result.stdout);
        RunFixtures.assertExpectedOutputs("coor_descent", output);
    }

    @Test
    void jarReportsAMissingInputInOneLine() throws Exception {
        Path spec = RunFixtures.copyExample("topk", dir);
        Result result = condjl("run", "--spec", spec.toString(), "--input", dir.resolve("nope.safetensors").toString(),
                "--output", dir.resolve("out.safetensors").toString());
        assertNotEquals(0, result.code);
        assertEquals(List.of("condjl run: " + dir.resolve("nope.safetensors") + ": no such file"),
                result.stderr.lines().filter(l -> !l.isBlank() && !LOG_LINE.matcher(l).find())
                .toList(), result.stderr);
    }

    private Result condjl(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-jar", System.getProperty("condjl.jar")));
        command.addAll(List.of(args));
        Path stdout = dir.resolve("stdout.txt");
        Path stderr = dir.resolve("stderr.txt");
        Process process = new ProcessBuilder(command).redirectOutput(stdout.toFile()).redirectError(stderr.toFile())
                .start();
        int code = process.waitFor();
        return new Result(code, Files.readString(stdout, StandardCharsets.UTF_8),
                Files.readString(stderr, StandardCharsets.UTF_8));
    }

    private record Result(int code, String stdout, String stderr) {}
}
