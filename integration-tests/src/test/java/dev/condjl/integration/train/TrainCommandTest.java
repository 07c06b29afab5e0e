package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.condjl.integration.cli.Condjl;
import dev.condjl.integration.cli.Programs;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import picocli.CommandLine;

/** {@code condjl train}, {@code eval} and {@code generate} through the command line, on tiny shapes. */
class TrainCommandTest {

    private static final String[] SMALL = {"--seq-len", "128", "--dim", "32", "--heads", "2", "--dim-head", "16",
        "--light-window", "16", "--heavy-q", "16", "--heavy-kv", "16", "--heavy-ff", "16", "--keys", "8",
        "--values", "8", "--batch", "4", "--eval-every", "2", "--eval-size", "8", "--no-progress"};

    @TempDir Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        Programs.configureEnvironment();
        return new CommandLine(new Condjl()).setOut(new PrintWriter(out)).setErr(new PrintWriter(err)).execute(args);
    }

    private static String[] train(Path runDir, String... extra) {
        List<String> args = new ArrayList<>(List.of("train", "--steps", "2", "--run-dir", runDir.toString()));
        args.addAll(List.of(SMALL));
        args.addAll(List.of(extra));
        return args.toArray(new String[0]);
    }

    @Test
    void trainsThenEvaluatesTheCheckpoint() throws IOException {
        Path run = dir.resolve("run");
        assertEquals(0, run(train(run)), err.toString());
        assertTrue(out.toString().contains("accuracy"), out.toString());
        assertTrue(Files.exists(run.resolve("report.json")) && Files.exists(run.resolve("train.png")));
        // the defaults against routing collapse reach the saved configuration
        ModelConfig config = ModelConfig.load(run.resolve("checkpoint"));
        assertEquals(2, config.numRoutedKv());
        assertTrue(config.zeroInitHeavyBranch());
        assertEquals(0, run("eval", "--checkpoint", run.resolve("checkpoint").toString(), "--eval-size", "8"),
                err.toString());
        assertTrue(out.toString().contains("routing L1"), out.toString());
        assertEquals(2, run("generate", "--checkpoint", run.resolve("checkpoint").toString(), "--prompt", "k1"));
        assertTrue(err.toString().contains("needs a model trained with --corpus"), err.toString());
    }

    @Test
    void trainsACharacterModelAndGenerates() throws Exception {
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "the quick brown fox jumps over the lazy dog. ".repeat(40));
        Path run = dir.resolve("text");
        assertEquals(0, run("train", "--corpus", corpus.toString(), "--steps", "2", "--seq-len", "64", "--dim", "32",
                "--dim-head", "16", "--light-window", "16", "--heavy-q", "4", "--heavy-kv", "8", "--batch", "4",
                "--eval-size", "4", "--run-dir", run.toString(), "--no-progress"), err.toString());
        assertTrue(out.toString().contains("character-level language model"), out.toString());
        out.getBuffer().setLength(0);
        assertEquals(0, run("generate", "--checkpoint", run.resolve("checkpoint").toString(), "--prompt", "the ",
                "--length", "20"), err.toString());
        String text = out.toString().strip();
        assertTrue(text.startsWith("the ") && text.length() == 24, text);
        assertEquals(2, run("generate", "--checkpoint", run.resolve("checkpoint").toString(), "--prompt", "THE"));
        assertTrue(err.toString().contains("'T'"), err.toString());
    }

    @ParameterizedTest
    @CsvSource({"weight, BATCH_SUBSET", "noise, DROP_PATH", "learned, LAYER_DROP", "none, AUTO"})
    void everyRegularizerTrains(String dropout, String mode) {
        Path run = dir.resolve(dropout);
        assertEquals(0, run(train(run, "--dropout", dropout, "--drop-path-mode", mode, "--drop-path-rate", "0.5")),
                err.toString());
        assertTrue(out.toString().contains("validation"), out.toString());
    }

    @Test
    void reportsBadOptionsByName() {
        assertEquals(2, run(train(dir.resolve("a"), "--dropout", "sometimes")));
        assertTrue(err.toString().contains("--dropout (sometimes)"), err.toString());
        assertEquals(2, run(train(dir.resolve("b"), "--drop-path-mode", "often")));
        assertTrue(err.toString().contains("--drop-path-mode (often)"), err.toString());
        assertEquals(2, run(train(dir.resolve("c"), "--devices", "tpu")));
        assertTrue(err.toString().contains("--devices (tpu)"), err.toString());
    }
}
