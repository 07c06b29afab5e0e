package dev.condjl.topk.checkpoint;

import ai.djl.ndarray.types.Shape;

/**
 * One tensor of a checkpoint, described without reading its data.
 *
 * @param key the state-dict key (after prefix stripping)
 * @param dtype the stored element type
 * @param shape the shape
 * @param bytes the stored size, {@code shape.size() * dtype.byteSize()}
 */
public record TensorEntry(String key, CheckpointDType dtype, Shape shape, long bytes) {}
