package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextCorpusTest {

    @TempDir Path dir;

    @Test
    void windowsPredictTheNextCharacter() throws IOException {
        String text = "über ".repeat(200) + "naïve ünïcode ✓\n".repeat(20);
        Path file = dir.resolve("t.txt");
        Files.writeString(file, text, StandardCharsets.UTF_8);
        TextCorpus corpus = TextCorpus.read(file, 16, null);
        assertEquals(TextCorpus.alphabetOf(text), corpus.alphabet());
        assertEquals((int) text.codePoints().distinct().count(), corpus.vocabSize());
        Sample s = corpus.sample(new SplittableRandom(3), 5);
        for (int row = 0; row < 5; row++) {
            for (int i = 0; i + 1 < 16; i++) {
                assertEquals(s.tokens()[row * 16 + i + 1], s.labels()[row * 16 + i]);
            }
        }
        long[] ids = java.util.Arrays.stream(TextCorpus.encode("naïve ✓", corpus.alphabet())).asLongStream()
                .toArray();
        assertEquals("naïve ✓", TextCorpus.decode(ids, corpus.alphabet()));
    }

    @Test
    void rejectsUnknownCharactersAndShortFiles() throws IOException {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> TextCorpus.encode("abz", "ab"));
        assertTrue(e.getMessage().contains("'z'"), e.getMessage());
        Path file = dir.resolve("short.txt");
        Files.writeString(file, "abc".repeat(10), StandardCharsets.UTF_8);
        e = assertThrows(IllegalArgumentException.class, () -> TextCorpus.read(file, 16, null));
        assertTrue(e.getMessage().contains("30 characters"), e.getMessage());
        Path bad = dir.resolve("latin1.txt");
        Files.write(bad, new byte[] {'a', (byte) 0xE9, 'b'});
        assertThrows(IOException.class, () -> TextCorpus.read(bad, 1, null));
    }
}
