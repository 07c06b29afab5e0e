package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the {@code condjl} command line in the test's JVM and hands back what it printed. */
final class CliOutput {

    private CliOutput() {}

    /**
     * Runs a command that must succeed.
     *
     * @param args the command line after {@code condjl}
     * @return its standard output
     */
    static String success(String... args) {
        return run(0, false, args);
    }

    /**
     * Runs a command that picocli must refuse as a usage error (exit code 2).
     *
     * @param args the command line after {@code condjl}
     * @return its standard error
     */
    static String usageError(String... args) {
        return run(2, true, args);
    }

    private static String run(int exitCode, boolean stderr, String... args) {
        StringWriter text = new StringWriter();
        CommandLine cli = new CommandLine(new Condjl());
        if (stderr) {
            cli.setErr(new PrintWriter(text, true));
        } else {
            cli.setOut(new PrintWriter(text, true));
        }
        assertEquals(exitCode, cli.execute(args), text.toString());
        return text.toString();
    }
}
