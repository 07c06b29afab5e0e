package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@code condjl run} in-process: the shipped examples against PyTorch outputs, and one-line errors. */
class RunTest {

    @TempDir Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = new CommandLine(new Condjl());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    private int runCase(String caseJson, String inputModule) throws IOException {
        RunFixtures.copyExample(inputModule, dir);
        Path spec = Files.writeString(dir.resolve("case.json"), caseJson);
        return run("run", "--spec", spec.toString(), "--input", dir.resolve(inputModule + ".in.safetensors").toString(),
                "--output", dir.resolve("out.safetensors").toString());
    }

    @Test
    void examplesMatchTheReference() throws IOException {
        for (String module : new String[] {"coor_descent", "topk"}) {
            Path spec = RunFixtures.copyExample(module, dir);
            Path output = dir.resolve(module + ".out.safetensors");
            int code = run("run", "--spec", spec.toString(), "--input",
                    dir.resolve(module + ".in.safetensors").toString(), "--output", output.toString());
            assertEquals(0, code, err.toString());
            RunFixtures.assertExpectedOutputs(module, output);
        }
        assertTrue(out.toString().contains("gates float32 (2, 4) [1.00000, 1.00000"), out.toString());
    }

    @Test
    void shippedExampleRunsWithoutFiles() {
        assertEquals(0, run("run", "--example", "topk"), err.toString());
        assertTrue(out.toString().startsWith("topk: 4 output tensor(s)"), out.toString());
        assertTrue(out.toString().matches("(?s).*indices int64 \\(2, 4\\) \\[\\d+, \\d+, .*"), out.toString());
        assertEquals(1, run("run", "--example", "nope"));
        assertOneLineError("no example 'nope' (examples: coor_descent, topk");
    }

    @Test
    void unknownModuleIsOneLine() throws IOException {
        assertEquals(1, runCase("{\"module\": \"coor_decent\"}", "topk"));
        assertOneLineError("unknown module 'coor_decent' (known: coor_descent, topk");
    }

    @Test
    void missingTensorIsOneLine() throws IOException {
        assertEquals(1, runCase("{\"module\": \"coor_descent\", \"config\": {\"n_iters\": 3, \"k\": 2}}", "topk"));
        assertOneLineError("missing input tensor 's' (inputs: [mask, x])");
    }

    @Test
    void badShapeIsOneLine() throws IOException {
        assertEquals(1, runCase("{\"module\": \"topk\", \"config\": {\"k\": 40}}", "topk"));
        assertOneLineError("k (40) must be in [1, 32]");
    }

    @Test
    void unknownConfigKeyIsOneLine() throws IOException {
        assertEquals(1, runCase("{\"module\": \"topk\", \"config\": {\"k\": 2, \"n_iter\": 3}}", "topk"));
        assertOneLineError("config: unknown key(s) [n_iter]");
    }

    @Test
    void unreadableFilesAreOneLine() throws IOException {
        Path spec = Files.writeString(dir.resolve("case.json"), "{\"module\": \"topk\"");
        Path missing = dir.resolve("missing.safetensors");
        assertEquals(1, run("run", "--spec", spec.toString(), "--input", missing.toString()));
        assertOneLineError("is not valid JSON");
        err.getBuffer().setLength(0);
        Path garbage = Files.write(dir.resolve("garbage.safetensors"), "not a tensor file".getBytes(
                StandardCharsets.UTF_8));
        Files.writeString(spec, "{\"module\": \"topk\", \"config\": {\"k\": 2}}");
        assertEquals(1, run("run", "--spec", spec.toString(), "--input", garbage.toString()));
        assertOneLineError("cannot read safetensors file " + garbage + ": header length");
        err.getBuffer().setLength(0);
        assertEquals(1, run("run", "--spec", spec.toString(), "--input", missing.toString()));
        assertOneLineError("cannot read safetensors file " + missing + ": no such file");
    }

    private void assertOneLineError(String fragment) {
        String text = err.toString();
        assertTrue(text.startsWith("condjl run: ") && text.contains(fragment), text);
        assertEquals(1, text.strip().lines().count(), text);
    }
}
