package dev.condjl.integration.train;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * A character-level language-modelling task over any UTF-8 text: the alphabet is the set of code points in the file,
 * the first 90% is for training and the last 10% for validation, and a sample is a random window whose every
 * position predicts the next character.
 */
public final class TextCorpus implements TrainingTask {

    private static final long VALIDATION_SEED = 0x7E57_C0DEL;

    private final String alphabet;
    private final int[] train;
    private final int[] valid;
    private final int seqLen;

    private TextCorpus(String alphabet, int[] train, int[] valid, int seqLen) {
        this.alphabet = alphabet;
        this.train = train;
        this.valid = valid;
        this.seqLen = seqLen;
    }

    /**
     * Reads a corpus.
     *
     * @param file a UTF-8 text file
     * @param seqLen n, characters per training window
     * @param alphabet null to take the file's own alphabet, or a saved model's alphabet (every character of the file
     *     must be in it)
     * @return the task
     * @throws IOException if the file cannot be read or is not UTF-8
     * @throws IllegalArgumentException if the file is too short for a window in each split, or has characters
     *     outside the given alphabet
     */
    public static TextCorpus read(Path file, int seqLen, String alphabet) throws IOException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(Files.readAllBytes(file)))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new IOException("--corpus " + file + " is not valid UTF-8", e);
        }
        String letters = alphabet != null ? alphabet : alphabetOf(text);
        int[] ids = encode(text, letters);
        int split = (int) (ids.length * 0.9);
        if (ids.length - split < seqLen + 1) {
            throw new IllegalArgumentException("--corpus " + file + " has " + ids.length + " characters; its last 10% "
                    + "(validation) must hold one window of seq-len + 1 = " + (seqLen + 1) + " characters");
        }
        int[] train = java.util.Arrays.copyOfRange(ids, 0, split);
        int[] valid = java.util.Arrays.copyOfRange(ids, split, ids.length);
        return new TextCorpus(letters, train, valid, seqLen);
    }

    /**
     * The sorted set of code points of a text, as a string.
     *
     * @param text any text
     * @return its alphabet
     */
    public static String alphabetOf(String text) {
        TreeSet<Integer> set = new TreeSet<>();
        text.codePoints().forEach(set::add);
        StringBuilder sb = new StringBuilder();
        set.forEach(sb::appendCodePoint);
        return sb.toString();
    }

    /**
     * Maps text to token ids.
     *
     * @param text the text
     * @param alphabet the alphabet; token id = code point index in it
     * @return the ids
     * @throws IllegalArgumentException naming the first character outside the alphabet
     */
    public static int[] encode(String text, String alphabet) {
        int[] letters = alphabet.codePoints().toArray();
        return text.codePoints().map(c -> {
            int id = java.util.Arrays.binarySearch(letters, c);
            if (id < 0) {
                throw new IllegalArgumentException(
                        "character '" + new String(Character.toChars(c)) + "' (U+" + Integer.toHexString(c)
                                + ") is not in the model's alphabet of " + letters.length + " characters");
            }
            return id;
        }).toArray();
    }

    /**
     * Maps token ids back to text.
     *
     * @param ids token ids
     * @param alphabet the alphabet
     * @return the text
     */
    public static String decode(long[] ids, String alphabet) {
        int[] letters = alphabet.codePoints().toArray();
        StringBuilder sb = new StringBuilder();
        for (long id : ids) {
            sb.appendCodePoint(letters[(int) id]);
        }
        return sb.toString();
    }

    /**
     * The alphabet (sorted code points); save it with a model.
     *
     * @return the alphabet
     */
    public String alphabet() {
        return alphabet;
    }

    /** {@inheritDoc} */
    @Override
    public int vocabSize() {
        return (int) alphabet.codePoints().count();
    }

    /** {@inheritDoc} */
    @Override
    public int numClasses() {
        return vocabSize();
    }

    /** {@inheritDoc} */
    @Override
    public int seqLen() {
        return seqLen;
    }

    /** {@inheritDoc} */
    @Override
    public boolean causal() {
        return true;
    }

    /** {@inheritDoc} */
    @Override
    public Sample sample(SplittableRandom random, int batchSize) {
        return windows(train, random, batchSize);
    }

    /** {@inheritDoc} */
    @Override
    public Sample validation(int count) {
        return windows(valid, new SplittableRandom(VALIDATION_SEED), count);
    }

    private Sample windows(int[] ids, SplittableRandom random, int batchSize) {
        long[] tokens = new long[batchSize * seqLen];
        long[] labels = new long[batchSize * seqLen];
        for (int row = 0; row < batchSize; row++) {
            int start = random.nextInt(ids.length - seqLen);
            for (int i = 0; i < seqLen; i++) {
                tokens[row * seqLen + i] = ids[start + i];
                labels[row * seqLen + i] = ids[start + i + 1];
            }
        }
        return new Sample(tokens, labels, batchSize, seqLen, null);
    }

    /** {@inheritDoc} */
    @Override
    public String tokenLabel(long token) {
        return decode(new long[] {token}, alphabet);
    }

    /** {@inheritDoc} */
    @Override
    public String describe() {
        return String.format("character-level language model: %d-character alphabet, %d training and %d validation "
                + "characters, windows of %d (uniform guessing: %.2f nats)",
                vocabSize(), train.length, valid.length, seqLen, Math.log(vocabSize()));
    }
}
