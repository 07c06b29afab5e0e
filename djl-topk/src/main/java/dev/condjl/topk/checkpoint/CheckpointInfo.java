package dev.condjl.topk.checkpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * What {@link Checkpoints#inspect} found in a checkpoint: the tensors a read with the same options would return.
 *
 * @param file the checkpoint file
 * @param format its format
 * @param selectedKey the top-level key of the nested state dict that was read, or null for the top level
 * @param tensors the tensors in file order
 */
public record CheckpointInfo(Path file, CheckpointFormat format, String selectedKey, List<TensorEntry> tensors) {

    /** Creates the info with an unmodifiable copy of the tensor list. */
    public CheckpointInfo {
        tensors = List.copyOf(tensors);
    }

    /**
     * The stored size of all tensors.
     *
     * @return the sum of {@link TensorEntry#bytes()}
     */
    public long totalBytes() {
        return tensors.stream().mapToLong(TensorEntry::bytes).sum();
    }
}
