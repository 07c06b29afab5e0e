package dev.condjl.integration.train;

import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.condjl.topk.checkpoint.Checkpoints;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A training checkpoint directory:
 *
 * <ul>
 *   <li>{@code config.json}: the {@link ModelConfig};
 *   <li>{@code condjl-0000.params}: DJL's parameter file ({@code Model.save}), what {@code --resume},
 *       {@code condjl eval} and {@code condjl generate} load;
 *   <li>{@code model.safetensors}: the same weights under PyTorch-style names ({@link RoutedModel#stateDict()}),
 *       each layer's keys being the reference {@code ConditionalRoutedTransformerBlock}'s;
 *   <li>{@code step}: the optimizer steps done.
 * </ul>
 *
 * <p>The optimizer's moment estimates are not saved (DJL keeps them private): a resumed run restarts them, while the
 * learning-rate schedule continues from the saved step.
 */
public final class RunCheckpoint {

    /** The DJL parameter file's prefix. */
    public static final String PREFIX = "condjl";
    /** The safetensors export's file name. */
    public static final String SAFETENSORS = "model.safetensors";

    private static final String STEP = "step";

    private RunCheckpoint() {}

    /**
     * Writes a checkpoint.
     *
     * @param dir the directory (created)
     * @param model the DJL model holding a {@link RoutedModel}
     * @param step optimizer steps done
     * @throws IOException if a file cannot be written
     */
    public static void save(Path dir, Model model, int step) throws IOException {
        RoutedModel block = (RoutedModel) model.getBlock();
        block.getConfig().save(dir);
        model.save(dir, PREFIX);
        Checkpoints.writeSafetensors(dir.resolve(SAFETENSORS), block.stateDict());
        Files.writeString(dir.resolve(STEP), Integer.toString(step), StandardCharsets.UTF_8);
    }

    /**
     * Loads the weights of a checkpoint into a model whose block was built from the checkpoint's configuration.
     *
     * @param dir the checkpoint directory
     * @param model the model
     * @return the optimizer steps the checkpoint had done
     * @throws IOException if a file is missing or does not match the model
     */
    public static int load(Path dir, Model model) throws IOException {
        try {
            model.load(dir, PREFIX);
        } catch (MalformedModelException e) {
            throw new IOException("cannot load " + dir + ": " + e.getMessage(), e);
        }
        Path step = dir.resolve(STEP);
        return Files.exists(step) ? Integer.parseInt(Files.readString(step, StandardCharsets.UTF_8).trim()) : 0;
    }

    /**
     * Opens a checkpoint for evaluation or generation: the model rebuilt from its {@code config.json}, with its
     * weights.
     *
     * @param dir the checkpoint directory
     * @param device where to put the weights
     * @return the model (close it); its block is a {@link RoutedModel}
     * @throws IOException if the checkpoint is missing, unreadable or does not match its configuration
     */
    public static Model open(Path dir, Device device) throws IOException {
        ModelConfig config = ModelConfig.load(dir);
        Model model = Model.newInstance("condjl-train", device, "PyTorch");
        try {
            RoutedModel block = new RoutedModel(config);
            model.setBlock(block);
            load(dir, model);
            block.initialize(model.getNDManager(), DataType.FLOAT32, new Shape(1, config.seqLen()));
            return model;
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }
}
