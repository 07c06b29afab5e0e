package dev.condjl.integration.logging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.condjl.cuda.CondjlOps;

import org.apache.logging.log4j.LogManager;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * condjl in an SLF4J application (README, "Logging in an SLF4J application"): with {@code log4j-to-slf4j} and an
 * SLF4J backend ({@code slf4j-simple}) instead of Log4j's core, condjl's Log4j 2 API warnings reach the backend.
 *
 * <p>Runs in its own surefire execution, {@code slf4j-logging} (integration-tests' pom), whose class path has no
 * {@code log4j-core} and no {@code log4j-slf4j2-impl}, and whose {@code condjl.ops.library} names a missing file, so
 * cuda-ops warns that it falls back to DJL operations. slf4j-simple writes to the file in {@code
 * org.slf4j.simpleLogger.logFile}.
 */
class Slf4jLoggingTest {

    @Test
    void theNativeFallbackWarningReachesTheSlf4jBackend() throws Exception {
        assumeTrue(Boolean.getBoolean("condjl.test.slf4jClasspath"),
                "runs in the slf4j-logging surefire execution only (its class path has no log4j-core)");
        assertEquals("org.apache.logging.slf4j.SLF4JLoggerContextFactory", LogManager.getFactory().getClass().getName(),
                "the Log4j API must find log4j-to-slf4j as its provider");

        assertFalse(CondjlOps.isAvailable());

        String log = Files.readString(Path.of(System.getProperty("org.slf4j.simpleLogger.logFile")));
        assertTrue(log.lines().anyMatch(line -> line.contains("WARN dev.condjl.cuda.CondjlOps")
                && line.contains("libcondjl_ops is unavailable")
                && line.contains("fused coordinate descent falls back to DJL operations")), log);
    }
}
