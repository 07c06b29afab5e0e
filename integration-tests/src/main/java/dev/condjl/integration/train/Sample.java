package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;

/**
 * A batch on the host: {@code tokens (b, n)} and labels, {@code (b)} for one label per sequence or {@code (b, n)} for
 * next-token prediction, plus, for the retrieval task, the positions that matter.
 *
 * @param tokens row-major (b·n) token ids
 * @param labels (b) or (b·n) class ids
 * @param batchSize b
 * @param seqLen n
 * @param marks per sequence the positions that matter ({@link RetrievalTask#KEY}, {@link RetrievalTask#VALUE},
 *     {@link RetrievalTask#QUERY}), or null for tasks without them
 */
public record Sample(long[] tokens, long[] labels, int batchSize, int seqLen, int[][] marks) {

    /**
     * Rows {@code [from, to)} of this batch.
     *
     * @param from first row
     * @param to end row (exclusive)
     * @return the rows
     */
    public Sample rows(int from, int to) {
        int perLabel = labels.length / batchSize;
        return new Sample(
                Arrays.copyOfRange(tokens, from * seqLen, to * seqLen),
                Arrays.copyOfRange(labels, from * perLabel, to * perLabel),
                to - from,
                seqLen,
                marks == null ? null : Arrays.copyOfRange(marks, from, to));
    }

    /**
     * The tokens as an int64 {@code (b, n)} array.
     *
     * @param manager where to create it (its device)
     * @return the tokens
     */
    public NDArray tokenArray(NDManager manager) {
        return manager.create(tokens, new Shape(batchSize, seqLen));
    }

    /**
     * The labels as an int64 array, {@code (b)} or {@code (b, n)}.
     *
     * @param manager where to create it (its device)
     * @return the labels
     */
    public NDArray labelArray(NDManager manager) {
        return labels.length == batchSize
                ? manager.create(labels, new Shape(batchSize))
                : manager.create(labels, new Shape(batchSize, seqLen));
    }

    /**
     * The token at a position.
     *
     * @param row sequence
     * @param position position in the sequence
     * @return the token id
     */
    public long token(int row, int position) {
        return tokens[row * seqLen + position];
    }
}
