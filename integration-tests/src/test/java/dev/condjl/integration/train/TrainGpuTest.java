package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.io.IOException;
import java.nio.file.Path;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training loop on GPUs through DJL's multi-device Trainer (all visible GPUs, the batch split between them).
 * Skipped, with the reason logged, where DJL's PyTorch engine has no CUDA natives or sees no GPU.
 */
class TrainGpuTest {

    private static final Logger LOG = LogManager.getLogger(TrainGpuTest.class);

    @TempDir Path dir;

    @Test
    void trainsOnTheGpus() throws IOException {
        int gpus = Engine.getEngine("PyTorch").getGpuCount();
        if (gpus == 0) {
            String reason = "skipped: DJL's PyTorch engine sees no GPU (natives flavor "
                    + System.getProperty("PYTORCH_FLAVOR", System.getenv().getOrDefault("PYTORCH_FLAVOR", "cpu"))
                    + ", engine " + Engine.getEngine("PyTorch").getVersion() + ")";
            LOG.warn("TrainGpuTest {}", reason);
            Assumptions.abort(reason);
        }
        Device[] devices = DeviceList.parse("gpu");
        assertEquals(gpus, devices.length);
        ModelConfig config = TrainingRunTest.smallConfig("none", 0, 0.2, "BATCH_SUBSET");
        TrainSettings s = new TrainSettings(10, 8 * gpus, 3e-3, 2, 0.01, "adamw", 1.0, 1, devices, 5, 16,
                dir.resolve("run"), null, false, 0, null, true);
        RunReport report = TrainingRun.train(config, config.task(null), s, System.err);
        assertTrue(Double.isFinite(report.validLoss()), "validation loss " + report.validLoss());
        assertTrue(report.validCurve().get(2)[1] < report.validCurve().get(0)[1], "the loss falls on the GPU");
        assertEquals(gpus == 1 ? "CUDA graph" : "eager", report.stepMode(), "one GPU replays a graph");
    }

    /**
     * On one GPU, replays of the captured step train as eager steps do: without random ops (no drop path) the
     * two runs' validation losses agree up to the float rounding of the GPU's atomic sums, which differ run to run.
     */
    @Test
    void aGraphedRunTrainsAsAnEagerOneDoes() throws IOException {
        Assumptions.assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "DJL's PyTorch engine sees no GPU");
        ModelConfig config = TrainingRunTest.smallConfig("none", 0, 0, "BATCH_SUBSET");
        RunReport[] reports = new RunReport[2];
        for (int graph = 0; graph < 2; graph++) {
            TrainSettings s = new TrainSettings(20, 8, 3e-3, 2, 0.01, "adamw", 1.0, 1, new Device[] {Device.gpu()},
                    10, 16, dir.resolve("run" + graph), null, false, 0, null, graph == 1);
            reports[graph] = TrainingRun.train(config, config.task(null), s, System.err);
        }
        assertEquals("eager", reports[0].stepMode());
        assertEquals("CUDA graph", reports[1].stepMode());
        double eager = reports[0].validLoss();
        double graphed = reports[1].validLoss();
        assertTrue(Math.abs(eager - graphed) <= 1e-2 * Math.abs(eager), "validation loss eager " + eager
                + ", graphed " + graphed);
        assertTrue(reports[1].validCurve().get(2)[1] < reports[1].validCurve().get(0)[1], "the graphed run learns");
    }
}
