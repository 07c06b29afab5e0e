package dev.condjl.integration.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.Arrays;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * The {@code --warmup}, {@code --warmup-seconds} and {@code --reps} options of the timing benchmarks (a picocli mixin)
 * and the median they define. A command sets its own defaults by initialising its field with
 * {@link #BenchRepeats(int, double, int)}.
 *
 * <p>Why warm-up time and not only a count: a step of a routed block is a few hundred DJL calls, and until the JIT
 * has compiled the Java code behind them (some hundreds of runs) the host's part of a step is several times its
 * steady state, which is what a training run pays after its first seconds. Measured on the project's 2-core machine,
 * {@code bench colt5 --dim 32 --heads 2 --window 16 --seq 256}: routed 14.35 ms after 20 warm-up runs, 8.12 after
 * 100, 5.76 after 1,000.
 */
final class BenchRepeats {

    @Spec(Spec.Target.MIXEE)
    CommandSpec mixee;

    @Option(names = "--warmup", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-seconds", paramLabel = "S", description = "After the --warmup runs, more untimed runs"
            + " until S seconds have passed since the first, so that the JIT has compiled the Java code the runs"
            + " call (default: ${DEFAULT-VALUE}).")
    double warmupSeconds;

    @Option(names = "--reps", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int reps;

    /**
     * Options with a command's defaults.
     *
     * @param warmup default untimed runs
     * @param warmupSeconds default least warm-up time in seconds, 0 for a fixed count
     * @param reps default timed runs
     */
    BenchRepeats(int warmup, double warmupSeconds, int reps) {
        this.warmup = warmup;
        this.warmupSeconds = warmupSeconds;
        this.reps = reps;
    }

    /**
     * Checks the options.
     *
     * @throws CommandLine.ParameterException unless {@code reps >= 1}, {@code warmup >= 0} and {@code 0 <=
     *     warmupSeconds <= 3600}
     */
    void validate() {
        if (reps < 1 || warmup < 0 || !(warmupSeconds >= 0 && warmupSeconds <= 3600)) {
            throw new CommandLine.ParameterException(mixee.commandLine(), "--reps (" + reps + ") must be >= 1,"
                    + " --warmup (" + warmup + ") >= 0 and --warmup-seconds (" + warmupSeconds + ") in [0, 3600]");
        }
    }

    /**
     * The untimed runs: {@code warmup} of them, then more until {@code warmupSeconds} have passed since the first.
     * Each run gets a fresh sub-manager of the input's manager, as in {@link #medians}.
     *
     * @param input the array every run reads
     * @param run one run, given its sub-manager
     * @return how many runs it made
     */
    int warmUp(NDArray input, Consumer<NDManager> run) {
        long start = System.nanoTime();
        long until = start + (long) (warmupSeconds * 1e9);
        int runs = 0;
        while (runs < warmup || System.nanoTime() < until) {
            inStep(input, run);
            runs++;
        }
        return runs;
    }

    /**
     * One run in a fresh sub-manager of the input's manager, with the input attached to it for the run, so that
     * the run's arrays are freed when it ends.
     *
     * @param input the array the run reads
     * @param run the run, given its sub-manager
     */
    static void inStep(NDArray input, Consumer<NDManager> run) {
        try (NDManager step = input.getManager().newSubManager()) {
            input.tempAttach(step);
            run.accept(step);
        }
    }

    /**
     * Median wall time of {@code reps} runs after the untimed ones of {@link #warmUp}. Each run gets a fresh
     * sub-manager of the input's manager, with the input attached to it for the run, so that every run's arrays are
     * freed. A run on an asynchronous device must read a value of its result before it returns, or the clock stops
     * too early.
     *
     * @param input the array every run reads
     * @param run one run, given its sub-manager
     * @return the median in milliseconds, not rounded
     */
    double medianMillis(NDArray input, Consumer<NDManager> run) {
        return medians(input, (step, queued) -> run.accept(step)).millis();
    }

    /**
     * {@link #medianMillis} and the median of each run's host part: the time until the run calls its second
     * argument, which it does once its work is queued and before it reads a result (on a GPU, what the run costs
     * the host; all of it where the run never calls it).
     *
     * @param input the array every run reads
     * @param run one run, given its sub-manager and the mark to call when its work is queued
     * @return both medians in milliseconds, not rounded (the host one is at most the wall one), and the number of
     *     warm-up runs
     */
    Medians medians(NDArray input, BiConsumer<NDManager, Runnable> run) {
        int warmed = warmUp(input, step -> run.accept(step, () -> { }));
        double[] millis = new double[reps];
        double[] host = new double[reps];
        for (int i = 0; i < reps; i++) {
            try (NDManager step = input.getManager().newSubManager()) {
                input.tempAttach(step);
                long start = System.nanoTime();
                long[] queued = {-1};
                run.accept(step, () -> queued[0] = System.nanoTime());
                long end = System.nanoTime();
                millis[i] = (end - start) / 1e6;
                host[i] = ((queued[0] < 0 ? end : queued[0]) - start) / 1e6;
            }
        }
        return new Medians(median(millis), median(host), warmed);
    }

    /**
     * The medians of {@link #medians}.
     *
     * @param millis the median wall time of a run, ms
     * @param hostMillis the median time until a run's work was queued, ms
     * @param warmupRuns the untimed runs before them
     */
    record Medians(double millis, double hostMillis, int warmupRuns) {}

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /**
     * Milliseconds rounded to whole microseconds, for the JSON lines.
     *
     * @param millis a time in milliseconds
     * @return it rounded to 3 decimals
     */
    static double roundToMicros(double millis) {
        return Math.round(millis * 1000) / 1000.0;
    }
}
