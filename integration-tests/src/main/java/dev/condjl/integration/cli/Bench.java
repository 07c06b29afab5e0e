package dev.condjl.integration.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code condjl bench}: benchmarks that print one JSON line per case, or ({@code colt5}, {@code op-costs}) a table. */
@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        description = "Benchmarks; each prints one JSON line per case, colt5 and op-costs a table.",
        subcommands = {Colt5Bench.class, CoorDescentBench.class, TopKBench.class, OpCostBench.class,
            StochasticDepthBench.class, LearnedDropoutBench.class, WeightDropoutBench.class})
public final class Bench implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** {@inheritDoc} */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a benchmark name is required");
    }
}
