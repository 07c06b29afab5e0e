package dev.condjl.integration.train;

import ai.djl.Device;

import java.nio.file.Path;

/**
 * How {@link TrainingRun} trains: everything that is not part of the model.
 *
 * @param steps total optimizer steps (a resumed run continues up to this count)
 * @param batchSize sequences per step, split over the devices
 * @param learningRate peak learning rate
 * @param warmupSteps linear warm-up steps from 0, then cosine decay to a tenth of the peak at the last step
 * @param weightDecay decoupled weight decay (AdamW), or L2 (Adam)
 * @param optimizer {@code adamw} or {@code adam}
 * @param clipNorm global gradient-norm limit, 0 for none
 * @param seed seed of the engine and the data
 * @param devices training devices; the first holds the master weights
 * @param evalEvery steps between validation points of the loss curve
 * @param evalSize validation sequences of the final evaluation
 * @param runDir where checkpoint, picture and report go
 * @param resumeFrom null, or a checkpoint directory to continue from
 * @param progress whether to draw the progress bar
 * @param memoryEvery steps between samples of the GPU memory in use (0: none); each sample first empties
 *     PyTorch's CUDA cache, so it reads what live tensors hold
 * @param profile null, or where {@code --profile} writes one step's chrome trace; the phases of every other step
 *     are then timed, each ended by a device synchronisation
 * @param cudaGraph whether a run on one GPU without {@code --profile} captures the step's forward+backward once in a
 *     CUDA graph ({@link dev.condjl.cuda.GraphedBackward}) and replays it; eager steps where it cannot
 */
public record TrainSettings(
        int steps,
        int batchSize,
        double learningRate,
        int warmupSteps,
        double weightDecay,
        String optimizer,
        double clipNorm,
        long seed,
        Device[] devices,
        int evalEvery,
        int evalSize,
        Path runDir,
        Path resumeFrom,
        boolean progress,
        int memoryEvery,
        Path profile,
        boolean cudaGraph) {

    /**
     * Checks the values a user can get wrong.
     *
     * @throws IllegalArgumentException naming the option and its value
     */
    public TrainSettings {
        if (steps < 1) {
            throw new IllegalArgumentException("--steps (" + steps + ") must be >= 1");
        }
        if (batchSize < devices.length) {
            throw new IllegalArgumentException(
                    "--batch (" + batchSize + ") must be >= the number of devices (" + devices.length + ")");
        }
        if (!(learningRate > 0)) {
            throw new IllegalArgumentException("--lr (" + learningRate + ") must be > 0");
        }
        if (warmupSteps < 0 || clipNorm < 0 || weightDecay < 0 || memoryEvery < 0) {
            throw new IllegalArgumentException("--warmup, --clip, --weight-decay and --gpu-memory-every must be >= 0");
        }
        if (!"adamw".equals(optimizer) && !"adam".equals(optimizer)) {
            throw new IllegalArgumentException("--optimizer (" + optimizer + ") must be adamw or adam");
        }
        if (evalEvery < 1 || evalSize < 1) {
            throw new IllegalArgumentException("--eval-every and --eval-size must be >= 1");
        }
    }

    /**
     * Whether the steps replay a CUDA graph: asked for, one GPU, and no profile (which traces eager steps).
     *
     * @return true to capture the step
     */
    public boolean graphedSteps() {
        return cudaGraph && devices.length == 1 && devices[0].isGpu() && profile == null;
    }
}
