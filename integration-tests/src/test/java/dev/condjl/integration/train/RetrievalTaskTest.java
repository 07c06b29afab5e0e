package dev.condjl.integration.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class RetrievalTaskTest {

    private static final int N = 128;
    private static final int KEYS = 8;
    private static final int REACH = 16;

    @Test
    void recordsAndQueryFollowTheLayout() {
        RetrievalTask task = new RetrievalTask(N, 3, KEYS, 10, REACH);
        Sample s = task.sample(new SplittableRandom(7), 200);
        for (int row = 0; row < s.batchSize(); row++) {
            int[] m = s.marks()[row];
            long key = s.token(row, m[RetrievalTask.KEY]);
            long value = s.token(row, m[RetrievalTask.VALUE]);
            assertEquals(N - 1, m[RetrievalTask.QUERY]);
            assertEquals(m[RetrievalTask.KEY] + 1, m[RetrievalTask.VALUE]);
            assertTrue(key >= 1 && key <= KEYS, "key token " + key);
            assertTrue(value > KEYS, "value token " + value);
            assertEquals(key, s.token(row, N - 1), "the query repeats the queried key");
            assertEquals(value - 1 - KEYS, s.labels()[row], "the label is the stored value");
            assertTrue(m[RetrievalTask.VALUE] < N - 1 - REACH, "the record is out of the query's reach");
            Set<Long> keys = new HashSet<>();
            int records = 0;
            for (int p = 0; p < N - 1; p++) {
                long t = s.token(row, p);
                if (t >= 1 && t <= KEYS) {
                    records++;
                    assertTrue(keys.add(t), "keys are distinct within a sequence");
                    assertTrue(s.token(row, p + 1) > KEYS, "a key is followed by its value");
                }
            }
            assertEquals(3, records);
        }
    }

    @Test
    void validationIsFixedAndTrainingIsNot() {
        RetrievalTask task = new RetrievalTask(N, 1, KEYS, 10, REACH);
        assertArrayEquals(task.validation(4).tokens(), task.validation(4).tokens());
        SplittableRandom r = new SplittableRandom(1);
        assertTrue(!java.util.Arrays.equals(task.sample(r, 4).tokens(), task.sample(r, 4).tokens()));
    }

    @Test
    void describesChance() {
        RetrievalTask task = new RetrievalTask(N, 2, KEYS, 16, REACH);
        assertEquals(1 + KEYS + 16, task.vocabSize());
        assertEquals(16, task.numClasses());
        assertTrue(task.describe().contains("chance 6.3%"), task.describe());
        assertEquals(".", task.tokenLabel(0));
        assertEquals("k0", task.tokenLabel(1));
        assertEquals("v0", task.tokenLabel(1 + KEYS));
    }

    @Test
    void rejectsLayoutsThatDoNotFit() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> new RetrievalTask(32, 4, KEYS, 10, 24));
        assertTrue(e.getMessage().contains("seq-len (32)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RetrievalTask(N, KEYS + 1, KEYS, 10, REACH));
    }
}
