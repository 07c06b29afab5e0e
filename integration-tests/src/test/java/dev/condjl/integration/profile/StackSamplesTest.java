package dev.condjl.integration.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/** {@link StackSamples}: a thread that only sleeps inside one method is seen there, at the top and inclusively. */
class StackSamplesTest {

    private static final AtomicBoolean STOP = new AtomicBoolean();

    /** The outer frame of the sampled thread. */
    static void outer() {
        inner();
    }

    /** Sleeps until told to stop: every sample's top frame is {@code Thread.sleep}, under this method. */
    static void inner() {
        while (!STOP.get()) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Test
    void countsTheTopFrameAndEveryMethodOfThePrefixOnTheStack() throws InterruptedException {
        STOP.set(false);
        Thread target = new Thread(StackSamplesTest::outer, "sampled");
        target.start();
        StackSamples samples = StackSamples.start(target, List.of(StackSamplesTest.class.getName() + "."), 100);
        Thread.sleep(300);
        samples.close();
        STOP.set(true);
        target.join();

        int n = samples.samples();
        assertTrue(n > 10, "samples taken: " + n);
        Map<String, Integer> inclusive = samples.inclusive();
        String inner = StackSamplesTest.class.getName() + ".inner";
        String outer = StackSamplesTest.class.getName() + ".outer";
        // the thread was in inner (called from outer) whenever it was sampled, except around its start
        assertTrue(inclusive.getOrDefault(inner, 0) >= n - 2, inclusive + " of " + n);
        assertEquals(inclusive.get(inner), inclusive.get(outer), inclusive.toString());
        assertTrue(inclusive.keySet().stream().allMatch(m -> m.startsWith(StackSamplesTest.class.getName())),
                inclusive.toString());
        String top = samples.self().keySet().iterator().next();
        // Thread.sleep itself (Java 17) or Thread.sleep0 (later releases), a native method either way
        assertTrue(top.startsWith("Thread.sleep") && top.endsWith(" (native)"), samples.self().toString());
        String text = samples.describe(3);
        assertTrue(text.startsWith(String.format(Locale.ROOT, "%,d samples", n)), text);
        assertTrue(text.contains("inclusive (" + StackSamplesTest.class.getName() + ".)"), text);
    }

    @Test
    void rejectsAPeriodBelowOneMicrosecond() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StackSamples.start(Thread.currentThread(), List.of("x."), 0));
        assertEquals("periodMicros (0) must be >= 1", e.getMessage());
    }
}
