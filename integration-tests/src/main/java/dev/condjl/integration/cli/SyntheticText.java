package dev.condjl.integration.cli;

import java.util.Random;

/**
 * Deterministic English-like text from a small seeded grammar, the default corpus of the character-level training
 * benchmarks: sentences with subject-verb agreement, counted plurals, subordinate clauses and quoted speech, grouped
 * into paragraphs. The grammar is learnable; the particular random choices are not, so a model can still overfit them.
 */
final class SyntheticText {

    private static final String[] NAMES = {"mira", "tomas", "ada", "kofi", "lena", "ravi", "ines", "bo", "yuki", "sam"};
    private static final String[] NOUNS = {"lamp", "river", "garden", "letter", "window", "horse", "song", "bridge",
        "market", "candle", "forest", "ship", "clock", "stone", "basket", "tower", "field", "door", "coat", "bird"};
    private static final String[] ADJECTIVES = {"green", "old", "quiet", "bright", "small", "heavy", "strange", "warm",
        "broken", "tall", "empty", "golden", "cold", "narrow", "gentle"};
    private static final String[] VERBS = {"find", "carry", "watch", "paint", "open", "follow", "build", "sell",
        "remember", "mend", "count", "hide", "keep", "visit", "draw"};
    private static final String[] PAST = {"found", "carried", "watched", "painted", "opened", "followed", "built",
        "sold", "remembered", "mended", "counted", "hid", "kept", "visited", "drew"};
    private static final String[] COUNTS = {"two", "three", "four", "five", "six", "seven", "eight", "nine"};
    private static final String[] PLACES = {"near the river", "behind the market", "in the old tower",
        "at the edge of the forest", "under the bridge", "by the window"};

    private SyntheticText() {}

    /**
     * Generates text.
     *
     * @param seed the seed; equal seeds give equal text
     * @param chars the number of characters to produce (at least 1)
     * @return exactly {@code chars} characters of lower-case ASCII text with punctuation and newlines
     */
    static String generate(long seed, int chars) {
        if (chars < 1) {
            throw new IllegalArgumentException("chars (" + chars + ") must be >= 1");
        }
        Random random = new Random(seed);
        StringBuilder text = new StringBuilder(chars + 200);
        while (text.length() < chars) {
            int sentences = 3 + random.nextInt(4);
            for (int i = 0; i < sentences; i++) {
                text.append(i == 0 ? "" : " ").append(sentence(random));
            }
            text.append('\n');
        }
        return text.substring(0, chars);
    }

    private static String sentence(Random r) {
        switch (r.nextInt(5)) {
            case 0:
                return "the " + pick(r, ADJECTIVES) + " " + pick(r, NOUNS) + " " + presentSingular(r) + " the "
                        + pick(r, NOUNS) + " " + pick(r, PLACES) + ".";
            case 1:
                return pick(r, NAMES) + " and " + pick(r, NAMES) + " " + pick(r, VERBS) + " " + pick(r, COUNTS) + " "
                        + pick(r, ADJECTIVES) + " " + pick(r, NOUNS) + "s.";
            case 2:
                return "when the " + pick(r, NOUNS) + " was " + pick(r, ADJECTIVES) + ", " + pick(r, NAMES) + " "
                        + pick(r, PAST) + " it " + pick(r, PLACES) + ".";
            case 3:
                return pick(r, NAMES) + " said: \"i " + pick(r, PAST) + " " + pick(r, COUNTS) + " " + pick(r, NOUNS)
                        + "s, and you " + pick(r, VERBS) + " the " + pick(r, NOUNS) + ".\"";
            default:
                return "every " + pick(r, NOUNS) + " " + pick(r, PLACES) + " is " + pick(r, ADJECTIVES) + ", but no "
                        + pick(r, NOUNS) + " " + presentSingular(r) + " it.";
        }
    }

    private static String presentSingular(Random r) {
        String verb = pick(r, VERBS);
        if (verb.endsWith("y")) {
            return verb.substring(0, verb.length() - 1) + "ies";
        }
        return verb.endsWith("ch") || verb.endsWith("sh") ? verb + "es" : verb + "s";
    }

    private static String pick(Random r, String[] words) {
        return words[r.nextInt(words.length)];
    }
}
