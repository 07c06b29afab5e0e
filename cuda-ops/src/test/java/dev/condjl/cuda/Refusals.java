package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.function.Executable;

/** The assertion of the bad-input tests: a call refused with an IllegalArgumentException that names the problem. */
final class Refusals {

    private Refusals() {}

    /**
     * Asserts that {@code call} throws an IllegalArgumentException whose message contains {@code expected}.
     *
     * @param expected a part of the message
     * @param call the refused call
     */
    static void assertMessage(String expected, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
