package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import dev.condjl.topk.checkpoint.Checkpoints;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * {@code condjl run} in-process: the shipped examples against PyTorch outputs, tensor files through the checkpoint
 * reader and writer, and one-line errors.
 */
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
        assertOneLineError(garbage + ": neither a PyTorch zip checkpoint nor a safetensors file");
        err.getBuffer().setLength(0);
        assertEquals(1, run("run", "--spec", spec.toString(), "--input", missing.toString()));
        assertOneLineError(missing + ": no such file");
        err.getBuffer().setLength(0);
        Path overlapping = Files.write(dir.resolve("overlapping.safetensors"), safetensors(
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                        + "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[1,2],\"data_offsets\":[6,8]}}", new byte[8]));
        assertEquals(1, run("run", "--spec", spec.toString(), "--input", overlapping.toString()));
        assertOneLineError(overlapping + ": entry 'header'");
    }

    @Test
    void bf16InputIsReadAsFloat32() throws IOException {
        // bf16 bits of 1.0, -2.5, 3.140625, 0.5: the upper halves of the float32 bits
        ByteBuffer data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        for (short bits : new short[] {0x3F80, (short) 0xC020, 0x4049, 0x3F00}) {
            data.putShort(bits);
        }
        Path input = Files.write(dir.resolve("bf16.safetensors"), safetensors(
                "{\"x\":{\"dtype\":\"BF16\",\"shape\":[1,4],\"data_offsets\":[0,8]}}", data.array()));
        Path spec = Files.writeString(dir.resolve("case.json"),
                "{\"module\": \"topk\", \"config\": {\"k\": 2, \"non_differentiable\": true}}");
        Path output = dir.resolve("out.safetensors");
        assertEquals(0, run("run", "--spec", spec.toString(), "--input", input.toString(), "--output",
                output.toString()), err.toString());
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray values = Checkpoints.read(output, manager).get("values");
            assertEquals(DataType.FLOAT32, values.getDataType());
            assertArrayEquals(new float[] {3.140625f, 1f}, values.toFloatArray());
        }
    }

    @Test
    void outputsAreWrittenInTheOrderTheCaseReturnsThem() throws IOException {
        Path spec = RunFixtures.copyExample("topk", dir);
        Path output = dir.resolve("out.safetensors");
        assertEquals(0, run("run", "--spec", spec.toString(), "--input", dir.resolve("topk.in.safetensors").toString(),
                "--output", output.toString()), err.toString());
        List<String> expected = List.of("values", "indices", "coor_descent_values", "gates");
        try (NDManager manager = NDManager.newBaseManager()) {
            assertEquals(expected, List.copyOf(Checkpoints.read(output, manager).keySet()));
        }
        List<String> printed = out.toString().lines().skip(1).map(line -> line.strip().split(" ")[0])
                .collect(Collectors.toList());
        assertEquals(expected, printed);
    }

    @Test
    void checkpointOptionsNeedWeights() throws IOException {
        RunFixtures.copyExample("topk", dir);
        assertEquals(2, run("run", "--spec", dir.resolve("topk.json").toString(), "--input",
                dir.resolve("topk.in.safetensors").toString(), "--strip-prefix", "module."));
        assertTrue(err.toString().contains("--key, --strip-prefix and --exclude need --weights"), err.toString());
    }

    /** A safetensors file: 8-byte little-endian header length, the JSON header, the data. */
    private static byte[] safetensors(String header, byte[] data) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(json.length).put(json).put(data).array();
    }

    private void assertOneLineError(String fragment) {
        String text = err.toString();
        assertTrue(text.startsWith("condjl run: ") && text.contains(fragment), text);
        assertEquals(1, text.strip().lines().count(), text);
    }
}
