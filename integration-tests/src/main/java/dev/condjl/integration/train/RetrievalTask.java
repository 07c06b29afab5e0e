package dev.condjl.integration.train;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The default task of {@code condjl train}: key-value retrieval over a long sequence, which a model can only solve by
 * moving information over a distance its local attention cannot reach.
 *
 * <p>A sequence of {@code n} tokens is filler ({@code .}) except for {@code pairs} key→value records, each a key
 * token {@code k0..k(K-1)} immediately followed by a value token {@code v0..v(V-1)}, at random places that end at
 * least {@code reach} positions before the last token. Keys within a sequence are distinct. The last token repeats
 * one of the keys: the query. The label is the value stored under it, so chance accuracy is {@code 1/V}. With one
 * pair the key is redundant and the task is needle retrieval; with more, the model must also match keys, which
 * needs more training.
 *
 * <p>Token ids: 0 filler, {@code 1..K} keys, {@code K+1..K+V} values. The positions that matter (the queried key,
 * its value and the query) are kept per sequence in {@link Sample#marks()} under {@link #KEY}, {@link #VALUE} and
 * {@link #QUERY}, so the report can check whether the routers picked them.
 */
public final class RetrievalTask implements TrainingTask {

    /** Index of the queried key's position in {@link Sample#marks()}. */
    public static final int KEY = 0;
    /** Index of the queried value's position in {@link Sample#marks()}. */
    public static final int VALUE = 1;
    /** Index of the query's position (the last token) in {@link Sample#marks()}. */
    public static final int QUERY = 2;

    private static final long VALIDATION_SEED = 0x5EED_CAFEL;

    private final int seqLen;
    private final int pairs;
    private final int numKeys;
    private final int numValues;
    private final int reach;

    /**
     * Creates the task.
     *
     * @param seqLen n, tokens per sequence
     * @param pairs key→value records per sequence, {@code 1..numKeys}
     * @param numKeys K, distinct key tokens
     * @param numValues V, distinct value tokens (= classes)
     * @param reach minimum distance from a record's value to the query, e.g. the light attention's window
     * @throws IllegalArgumentException if the records do not fit before {@code n - 1 - reach}
     */
    public RetrievalTask(int seqLen, int pairs, int numKeys, int numValues, int reach) {
        if (pairs < 1 || pairs > numKeys) {
            throw new IllegalArgumentException("pairs (" + pairs + ") must be in [1, keys = " + numKeys + "]");
        }
        if (numValues < 2) {
            throw new IllegalArgumentException("values (" + numValues + ") must be >= 2");
        }
        if (reach < 0 || 4 * pairs > seqLen - 1 - reach) {
            throw new IllegalArgumentException("seq-len (" + seqLen + ") leaves too little room for " + pairs
                    + " pairs at least " + reach + " tokens before the query");
        }
        this.seqLen = seqLen;
        this.pairs = pairs;
        this.numKeys = numKeys;
        this.numValues = numValues;
        this.reach = reach;
    }

    /** {@inheritDoc} */
    @Override
    public int vocabSize() {
        return 1 + numKeys + numValues;
    }

    /** {@inheritDoc} */
    @Override
    public int numClasses() {
        return numValues;
    }

    /** {@inheritDoc} */
    @Override
    public int seqLen() {
        return seqLen;
    }

    /** {@inheritDoc} */
    @Override
    public boolean causal() {
        return false;
    }

    /** {@inheritDoc} */
    @Override
    public Sample sample(SplittableRandom random, int batchSize) {
        long[] tokens = new long[batchSize * seqLen];
        long[] labels = new long[batchSize];
        int[][] marks = new int[batchSize][];
        for (int row = 0; row < batchSize; row++) {
            marks[row] = fillRow(random, tokens, row * seqLen, labels, row);
        }
        return new Sample(tokens, labels, batchSize, seqLen, marks);
    }

    /** {@inheritDoc} */
    @Override
    public Sample validation(int count) {
        return sample(new SplittableRandom(VALIDATION_SEED), count);
    }

    /** Writes one sequence at {@code offset}; returns its marks. */
    private int[] fillRow(SplittableRandom random, long[] tokens, int offset, long[] labels, int row) {
        // records end before this position: the value of a record at p sits at p + 1 <= last - reach - 1
        int limit = seqLen - 1 - reach - 1;
        int[] keys = distinctKeys(random);
        int[] starts = new int[pairs];
        int placed = 0;
        while (placed < pairs) {
            int p = random.nextInt(limit);
            boolean overlaps = false;
            for (int j = 0; j < placed; j++) {
                overlaps |= Math.abs(starts[j] - p) < 2;
            }
            if (!overlaps) {
                starts[placed++] = p;
            }
        }
        int query = random.nextInt(pairs);
        int queriedValue = 0;
        for (int j = 0; j < pairs; j++) {
            int value = random.nextInt(numValues);
            tokens[offset + starts[j]] = 1 + keys[j];
            tokens[offset + starts[j] + 1] = 1 + numKeys + value;
            if (j == query) {
                queriedValue = value;
            }
        }
        tokens[offset + seqLen - 1] = 1 + keys[query];
        labels[row] = queriedValue;
        return new int[] {starts[query], starts[query] + 1, seqLen - 1};
    }

    private int[] distinctKeys(SplittableRandom random) {
        int[] all = new int[numKeys];
        Arrays.setAll(all, i -> i);
        for (int i = 0; i < pairs; i++) {
            int j = i + random.nextInt(numKeys - i);
            int t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        return Arrays.copyOf(all, pairs);
    }

    /** {@inheritDoc} */
    @Override
    public String tokenLabel(long token) {
        if (token == 0) {
            return ".";
        }
        return token <= numKeys ? "k" + (token - 1) : "v" + (token - 1 - numKeys);
    }

    /** {@inheritDoc} */
    @Override
    public String describe() {
        return String.format(
                "key-value retrieval: %d tokens, %d key->value pair%s at least %d tokens before the query key at the "
                        + "end, %d values (chance %.1f%%%s)",
                seqLen, pairs, pairs == 1 ? "" : "s", reach, numValues, 100.0 / numValues,
                pairs == 1 ? "" : String.format(", guessing among the stored values %.1f%%", 100.0 / pairs));
    }
}
