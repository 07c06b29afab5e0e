package dev.condjl.integration.train;

import java.util.SplittableRandom;

/** A data source for {@code condjl train}: fixed-length token sequences and their labels. */
public sealed interface TrainingTask permits RetrievalTask, TextCorpus {

    /**
     * Number of token ids, {@code [0, vocabSize)}.
     *
     * @return the vocabulary size
     */
    int vocabSize();

    /**
     * Number of output classes of the model's head.
     *
     * @return the class count
     */
    int numClasses();

    /**
     * Tokens per sequence.
     *
     * @return n
     */
    int seqLen();

    /**
     * Whether the model predicts every position from its past (a language model) rather than one label per sequence
     * from the last position.
     *
     * @return true for next-token prediction
     */
    boolean causal();

    /**
     * Draws a training batch.
     *
     * @param random the generator (advanced)
     * @param batchSize sequences
     * @return the batch
     */
    Sample sample(SplittableRandom random, int batchSize);

    /**
     * The fixed validation set: the same sequences on every call with the same arguments.
     *
     * @param count sequences
     * @return the validation batch
     */
    Sample validation(int count);

    /**
     * How a token is drawn in pictures and logs.
     *
     * @param token a token id
     * @return a short label
     */
    String tokenLabel(long token);

    /**
     * One line naming the task and its chance level, for logs and the report.
     *
     * @return the description
     */
    String describe();
}
