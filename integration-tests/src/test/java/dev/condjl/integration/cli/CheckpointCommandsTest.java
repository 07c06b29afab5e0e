package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.topk.checkpoint.ReadOptions;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@code condjl convert} and {@code condjl inspect} in-process, on files made by
 * {@code djl-colt5/src/test/resources/checkpoint/gen_fixtures.py} (copied to {@code checkpoint/} here).
 */
class CheckpointCommandsTest {

    @TempDir Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int condjl(String... args) {
        CommandLine cli = new CommandLine(new Condjl());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    private static Path fixture(String name) throws URISyntaxException {
        return Path.of(CheckpointCommandsTest.class.getResource("/checkpoint/" + name).toURI());
    }

    @Test
    void excludeLeavesOutTheKeysItMatches() throws Exception {
        Path target = dir.resolve("no_norm.safetensors");
        assertEquals(0, condjl("convert", fixture("nested.pt").toString(), target.toString(),
                "--strip-prefix", "module.", "--exclude", "norm\\..*", "--exclude", "head\\.weight"), err.toString());
        try (NDManager manager = NDManager.newBaseManager()) {
            assertEquals(List.of("proj.weight", "proj.bias"), List.copyOf(Checkpoints.read(target, manager).keySet()));
        }
    }

    @Test
    void inspectListsTheNestedStateDict() throws Exception {
        assertEquals(0, condjl("inspect", fixture("nested.pt").toString()), err.toString());
        List<String> lines = out.toString().lines().toList();
        assertEquals(List.of("key", "dtype", "shape", "bytes"), List.of(lines.get(0).split("\\s+")));
        assertEquals(List.of("module.proj.weight", "float32", "(3,", "4)", "48"), List.of(lines.get(1).split("\\s+")));
        // proj 3x4 + 3, norm 3 + 3, head 2x3 float32 values
        assertTrue(lines.get(6).endsWith(": PYTORCH_ZIP, 5 tensors, " + 4 * (12 + 3 + 3 + 3 + 6)
                + " bytes, state dict under key 'model'"), lines.get(6));
    }

    @Test
    void convertWritesTheModelUnderStrippedKeys() throws Exception {
        Path target = dir.resolve("model.safetensors");
        assertEquals(0, condjl("convert", fixture("nested.pt").toString(), target.toString(), "--key", "model",
                "--strip-prefix", "module."), err.toString());
        assertTrue(out.toString().startsWith("wrote " + target + ": 5 tensors, 108 bytes (state dict under key"
                + " 'model')"), out.toString());
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> converted = Checkpoints.read(target, manager);
            Map<String, NDArray> source = Checkpoints.read(fixture("nested.pt"), manager,
                    ReadOptions.builder().optStripPrefix("module.").build());
            assertEquals(List.of("proj.weight", "proj.bias", "norm.weight", "norm.bias", "head.weight"),
                    List.copyOf(converted.keySet()));
            source.forEach((key, array) -> assertTrue(array.contentEquals(converted.get(key)), key));
        }
    }

    @Test
    void hostileAndMissingFilesEndInOneLine() throws Exception {
        Path hostile = fixture("hostile_os_system.pt");
        assertEquals(1, condjl("inspect", hostile.toString()));
        assertOneLine("condjl inspect: " + hostile + ": entry 'hostile_os_system/data.pkl': pickle refused: global"
                + " 'os.system' is not allowed");

        Path missing = dir.resolve("missing.pt");
        assertEquals(1, condjl("convert", missing.toString(), dir.resolve("x.safetensors").toString()));
        assertOneLine("condjl convert: " + missing + ": no such file");

        Path garbage = Files.writeString(dir.resolve("garbage.bin"), "this is not a checkpoint at all");
        assertEquals(1, condjl("inspect", garbage.toString()));
        assertOneLine("condjl inspect: " + garbage + ": neither a PyTorch zip checkpoint nor a safetensors file");
    }

    private void assertOneLine(String prefix) {
        List<String> lines = err.toString().lines().toList();
        assertEquals(1, lines.size(), err.toString());
        assertTrue(lines.get(0).startsWith(prefix), lines.get(0));
        err.getBuffer().setLength(0);
    }
}
