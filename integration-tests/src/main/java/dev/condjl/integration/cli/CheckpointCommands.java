package dev.condjl.integration.cli;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** Error reporting shared by {@link Convert} and {@link Inspect}: one line on stderr, exit code 1. */
final class CheckpointCommands {

    private static final Logger LOGGER = LogManager.getLogger(CheckpointCommands.class);

    private CheckpointCommands() {}

    /**
     * Prints {@code condjl <command>: <message>} and returns the exit code.
     *
     * @param spec the failing command
     * @param e the error; {@code CheckpointException} messages already name file, entry and key
     * @return 1
     */
    static int fail(CommandLine.Model.CommandSpec spec, Exception e) {
        LOGGER.debug("condjl {} failed", spec.name(), e);
        String message = e instanceof NoSuchFileException ? e.getMessage() + ": no such file"
                : e instanceof AccessDeniedException ? e.getMessage() + ": permission denied"
                : e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
        PrintWriter err = spec.commandLine().getErr();
        err.println("condjl " + spec.name() + ": " + message);
        err.flush();
        return 1;
    }
}
