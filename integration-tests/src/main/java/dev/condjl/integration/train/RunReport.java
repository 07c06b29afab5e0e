package dev.condjl.integration.train;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The final report of a training run (also written as {@code report.json}).
 *
 * @param task the task's description
 * @param devices the training devices
 * @param parameters trainable parameter count
 * @param firstStep the step the run started at (non-zero when resumed)
 * @param steps the step it ended at
 * @param batchSize sequences per step
 * @param seqLen tokens per sequence
 * @param trainSeconds wall time of the training steps (validation points excluded)
 * @param msPerStep mean wall time per step
 * @param steadyMsPerStep median wall time of a step in the run's second half (the JIT has compiled the step's Java
 *     code by then; the first hundreds of steps are slower)
 * @param cpuMsPerStep mean CPU time per step, all threads of the process (on a shared machine the wall time
 *     grows with the load, this does not)
 * @param tokensPerSecond training throughput
 * @param trainLoss smoothed training loss at the end
 * @param skippedSteps steps whose update was skipped for a non-finite gradient norm
 * @param validLoss validation loss
 * @param validAccuracy validation accuracy
 * @param chance accuracy of uniform guessing
 * @param validSequences validation sequences
 * @param routing per layer, routing statistics ({@link Evaluation})
 * @param validCurve the validation points during training: {step, loss, accuracy}, on the first (up to) 64
 *     validation sequences
 * @param peakRssBytes the process's peak resident memory (VmHWM), -1 if unknown
 * @param checkpoint the checkpoint directory
 * @param picture the PNG with the loss curve and routing map, null when it could not be drawn
 * @param gpuMemory {step, bytes} samples of the GPU memory in use after emptying the CUDA cache (empty unless
 *     asked for with {@code --gpu-memory-every})
 * @param profile what {@code --profile} measured, null without it
 * @param stepMode how the steps ran: {@code eager}, {@code CUDA graph} (replays of one captured forward+backward), or
 *     {@code eager (...)} with the reason a requested graph could not be captured
 */
public record RunReport(
        String task,
        String devices,
        long parameters,
        int firstStep,
        int steps,
        int batchSize,
        int seqLen,
        double trainSeconds,
        double msPerStep,
        double steadyMsPerStep,
        double cpuMsPerStep,
        double tokensPerSecond,
        double trainLoss,
        int skippedSteps,
        double validLoss,
        double validAccuracy,
        double chance,
        int validSequences,
        List<Map<String, Double>> routing,
        List<double[]> validCurve,
        long peakRssBytes,
        String checkpoint,
        String picture,
        List<long[]> gpuMemory,
        StepProfile profile,
        String stepMode) {

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();

    /**
     * Writes the report as JSON.
     *
     * @param file the file
     * @throws IOException if it cannot be written
     */
    public void save(Path file) throws IOException {
        Files.writeString(file, GSON.toJson(this), StandardCharsets.UTF_8);
    }

    /**
     * The report for people.
     *
     * @return several lines
     */
    public String toText() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "task        %s%n", task));
        sb.append(String.format(Locale.ROOT, "model       %,d parameters on %s%n", parameters, devices));
        sb.append(String.format(Locale.ROOT, "training    steps %d..%d, batch %d x %d tokens, %s (%.0f ms/step, "
                + "median %.1f in the second half; %,.0f tokens/s; CPU %.0f ms/step; %s steps)%n", firstStep, steps,
                batchSize, seqLen, ProgressLine.duration(trainSeconds), msPerStep, steadyMsPerStep, tokensPerSecond,
                cpuMsPerStep, stepMode));
        sb.append(String.format(Locale.ROOT, "loss        train %.4f, validation %.4f%s%n", trainLoss, validLoss,
                skippedSteps == 0 ? "" : " (" + skippedSteps + " updates skipped: non-finite gradients)"));
        sb.append(String.format(Locale.ROOT, "accuracy    %.1f%% on %d validation sequences (chance %.1f%%)%n",
                100 * validAccuracy, validSequences, 100 * chance));
        sb.append(Evaluation.Result.routingText(routing));
        sb.append(String.format(Locale.ROOT, "peak memory %s (VmHWM)%n",
                peakRssBytes < 0 ? "unknown" : String.format(Locale.ROOT, "%.0f MiB", peakRssBytes / 1048576.0)));
        sb.append(String.format(Locale.ROOT, "checkpoint  %s%n", checkpoint));
        sb.append(String.format(Locale.ROOT, "picture     %s%n", picture));
        if (!gpuMemory.isEmpty()) {
            long first = gpuMemory.get(0)[1];
            long max = gpuMemory.stream().mapToLong(m -> m[1]).max().orElse(first);
            sb.append(String.format(Locale.ROOT, "gpu memory  %.1f MiB in use at step %d, at most %.1f MiB up to step"
                    + " %d (growth %+.1f MiB)%n", first / 1048576.0, gpuMemory.get(0)[0], max / 1048576.0,
                    gpuMemory.get(gpuMemory.size() - 1)[0], (max - first) / 1048576.0));
        }
        if (profile != null) {
            sb.append(profile.toText());
        }
        return sb.toString();
    }
}
