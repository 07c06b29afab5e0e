package dev.condjl.topk;

import ai.djl.ndarray.NDArray;

/**
 * What {@link TopK#topk} returns (the reference's {@code TopkReturn}); every field is {@code (..., k)}.
 *
 * @param values the selected entries of {@code x · gates}, sorted descending; equal to the hard top-k of {@code x}
 *     in value, with the coordinate-descent gradient flowing through the gates
 * @param indices int64 positions of the selected entries along the last axis
 * @param coorDescentValues the soft top-k scores in [0, 1] at the selected positions; null in non-differentiable
 *     mode
 * @param gates straight-through gates at the selected positions: exactly 1.0 in value, gradient of the soft top-k
 *     scores; null in non-differentiable mode
 */
public record TopKResult(NDArray values, NDArray indices, NDArray coorDescentValues, NDArray gates) {}
