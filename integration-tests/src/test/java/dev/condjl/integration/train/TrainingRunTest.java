package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.colt5.ConditionalRoutedTransformerBlock;
import dev.condjl.topk.checkpoint.StateDicts;
import dev.condjl.topk.checkpoint.Checkpoints;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.Map;
import java.util.stream.Collectors;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training program end to end on a small retrieval configuration: 30 steps lower the validation loss, the
 * checkpoint reloads to the same evaluation loss (through {@code condjl eval}'s path and through {@code --resume}),
 * the safetensors export loads into a reference-named block, and the picture is written.
 */
class TrainingRunTest {

    static final int N = 64;

    @TempDir Path dir;

    /** A small model: 2 layers of width 32 over 64 tokens, 16 routed tokens per router. */
    static ModelConfig smallConfig(String dropout, double rate, double dropPath, String mode) {
        RetrievalTask task = new RetrievalTask(N, 1, 8, 8, 16);
        return new ModelConfig(ModelConfig.RETRIEVAL, N, task.vocabSize(), task.numClasses(), 32, 2, 2, 16, 16, 16,
                16, 1, 16, 1.0, true, 0, true, dropPath, mode, dropout, rate, 1, 8, 8, null, null);
    }

    static TrainSettings settings(int steps, Path runDir, Path resume) {
        return new TrainSettings(steps, 8, 3e-3, 5, 0.01, "adamw", 1.0, 1, new Device[] {Device.cpu()}, 10, 16,
                runDir, resume, false, 0, null, true);
    }

    /** {@code --profile}: every step but the traced middle one is timed by phase, and the trace counts its ops. */
    @Test
    void profileTimesThePhasesAndCountsTheTracedStep() throws IOException {
        ModelConfig config = smallConfig("none", 0, 0, "BATCH_SUBSET");
        Path trace = dir.resolve("step.json");
        TrainSettings s = new TrainSettings(13, 8, 3e-3, 5, 0.01, "adamw", 1.0, 1, new Device[] {Device.cpu()}, 100,
                16, dir.resolve("profiled"), null, false, 0, trace, true);
        RunReport report = TrainingRun.train(config, config.task(null), s, System.err);
        StepProfile profile = report.profile();
        assertEquals(12, profile.timedSteps());
        assertEquals(6, profile.tracedStep());
        assertTrue(profile.forwardBackwardMs() > 0 && profile.clipUpdateMs() > 0, profile.toString());
        assertTrue(profile.forwardOps() > 20 && profile.backwardNodes() > 20, profile.toString());
        assertTrue(Files.size(trace) > 0);
        assertTrue(report.toText().contains("profile     median of 12 steps"), report.toText());
        // one step of the second half: more than nothing, less than all 13 steps together
        double steady = report.steadyMsPerStep();
        assertTrue(steady > 0 && steady < report.trainSeconds() * 1e3, report.toText());
        assertTrue(report.toText().contains(String.format(Locale.ROOT, "median %.1f in the second half",
                steady)), report.toText());
    }

    @Test
    void trainsReloadsResumesAndExports() throws IOException {
        ModelConfig config = smallConfig("none", 0, 0.2, "BATCH_SUBSET");
        TrainingTask task = config.task(null);
        RunReport report = TrainingRun.train(config, task, settings(30, dir.resolve("run"), null), System.err);

        List<double[]> curve = report.validCurve();
        assertEquals(List.of(0.0, 10.0, 20.0, 30.0), curve.stream().map(p -> p[0]).collect(Collectors.toList()));
        assertTrue(curve.get(3)[1] < curve.get(0)[1],
                "validation loss must fall: " + curve.get(0)[1] + " -> " + curve.get(3)[1]);
        assertEquals(report.validLoss(), curve.get(3)[1], 1e-6, "the curve set is the validation set");
        assertEquals("eager", report.stepMode(), "CUDA graphs need a GPU");
        assertTrue(report.toText().contains("; eager steps)"), report.toText());

        Path checkpoint = Path.of(report.checkpoint());
        try (Model model = RunCheckpoint.open(checkpoint, Device.cpu())) {
            RoutedModel block = (RoutedModel) model.getBlock();
            Evaluation.Result again = Evaluation.run(block, new ParameterStore(model.getNDManager(), false),
                    model.getNDManager(), task, task.validation(16), 7);
            assertEquals(report.validLoss(), again.loss(), 1e-5, "reloaded checkpoint, other chunking");
            assertEquals(report.validAccuracy(), again.accuracy(), 1e-9);
        }

        RunReport resumed = TrainingRun.train(config, task, settings(32, dir.resolve("run2"), checkpoint),
                System.err);
        assertEquals(30, resumed.firstStep());
        assertEquals(report.validLoss(), resumed.validCurve().get(0)[1], 1e-5, "resume starts from the weights");
        assertTrue(Double.isFinite(resumed.validLoss()));

        assertExportLoadsIntoAReferenceBlock(config, checkpoint.resolve(RunCheckpoint.SAFETENSORS));
        BufferedImage picture = ImageIO.read(Path.of(report.picture()).toFile());
        assertEquals(1400, picture.getWidth());
        assertTrue(picture.getHeight() > 600);
        assertTrue(Files.readAllLines(dir.resolve("run/metrics.csv")).size() == 31);
    }

    @Test
    void runsStartedTogetherGetTheirOwnDirectories() throws IOException {
        Path base = dir.resolve("runs");
        Set<Path> made = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            Path run = TrainingRun.newRunDir(base);
            assertTrue(Files.isDirectory(run), run + " exists");
            assertTrue(made.add(run), run + " was handed out twice");
        }
    }

    @Test
    void aPictureThatCannotBeWrittenKeepsTheOtherResults() throws IOException {
        ModelConfig config = smallConfig("none", 0, 0, "BATCH_SUBSET");
        Path run = dir.resolve("blocked");
        // a non-empty directory where the picture should go: no image writer can replace it
        Files.createDirectories(run.resolve("train.png").resolve("occupied"));
        RunReport report = TrainingRun.train(config, config.task(null), settings(3, run, null), System.err);

        assertEquals(null, report.picture(), "no picture was drawn");
        assertTrue(Files.isDirectory(run.resolve("train.png")), "the obstacle is untouched");
        assertTrue(Files.isRegularFile(Path.of(report.checkpoint()).resolve(RunCheckpoint.SAFETENSORS)));
        assertEquals(4, Files.readAllLines(run.resolve("metrics.csv")).size(), "header + 3 steps");
        String json = Files.readString(run.resolve("report.json"));
        assertTrue(json.contains("\"validAccuracy\"") && !json.contains("train.png"), json);
    }

    private static void assertExportLoadsIntoAReferenceBlock(ModelConfig c, Path file) throws IOException {
        try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> all = Checkpoints.read(file, manager);
            assertTrue(all.containsKey("token_emb.weight") && all.containsKey("to_logits.bias"), all.keySet()
                    .toString());
            Map<String, NDArray> layer1 = all.entrySet().stream()
                    .filter(e -> e.getKey().startsWith("layers.1."))
                    .collect(Collectors.toMap(e -> e.getKey().substring("layers.1.".length()), Map.Entry::getValue));
            assertTrue(layer1.containsKey("conditional_attn.q_router.routing_token"), layer1.keySet().toString());
            ConditionalRoutedTransformerBlock block = RoutedModel.routedBlock(c);
            block.initialize(manager, DataType.FLOAT32, new Shape(1, N, c.dim()));
            StateDicts.LoadReport loaded = StateDicts.load(block, layer1, true);
            assertEquals(layer1.size(), loaded.loaded());
        }
    }
}
