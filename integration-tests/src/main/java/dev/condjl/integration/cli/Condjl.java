package dev.condjl.integration.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code condjl} command line: runs reference modules, benchmarks, checkpoint tools and training. */
@Command(
        name = "condjl",
        mixinStandardHelpOptions = true,
        version = "condjl 0.1.0",
        description = "Conditional-compute transformer blocks for DJL.",
        subcommands = {Run.class, Bench.class, Convert.class, Inspect.class,
            dev.condjl.integration.train.TrainCommand.class, dev.condjl.integration.train.EvalCommand.class,
            dev.condjl.integration.train.GenerateCommand.class})
public final class Condjl implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /**
     * Runs the CLI.
     *
     * @param args the command-line arguments
     */
    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /**
     * Runs the CLI without exiting the JVM, for tests.
     *
     * @param args the command-line arguments
     * @return the exit code
     */
    public static int execute(String... args) {
        Programs.configureEnvironment();
        return new CommandLine(new Condjl()).execute(args);
    }

    /** {@inheritDoc} */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
    }
}
