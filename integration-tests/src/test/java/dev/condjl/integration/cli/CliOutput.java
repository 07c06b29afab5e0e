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
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new Condjl());
        cli.setOut(new PrintWriter(out, true));
        assertEquals(0, cli.execute(args), out.toString());
        return out.toString();
    }

    /**
     * Runs a command that picocli must refuse as a usage error (exit code 2).
     *
     * @param args the command line after {@code condjl}
     * @return its standard error
     */
    static String usageError(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new Condjl());
        cli.setErr(new PrintWriter(err, true));
        assertEquals(2, cli.execute(args), err.toString());
        return err.toString();
    }
}
