package dev.condjl.integration.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar on stderr: steps done, loss, tokens per second and time left. On a terminal the line is
 * redrawn in place; otherwise (a log file, a test) a line is printed at every 10% of the run.
 */
public final class ProgressLine {

    private static final int WIDTH = 24;

    private final PrintStream out;
    private final int total;
    private final boolean terminal;
    private final long startNanos = System.nanoTime();
    private final int first;
    private int lastDecile = -1;

    /**
     * Starts a bar.
     *
     * @param out where to draw (stderr)
     * @param first the step the run starts at (0, or the resumed step)
     * @param total the last step
     * @param terminal whether to redraw in place
     */
    public ProgressLine(PrintStream out, int first, int total, boolean terminal) {
        this.out = out;
        this.first = first;
        this.total = total;
        this.terminal = terminal;
    }

    /**
     * Updates the bar after a step.
     *
     * @param step steps done
     * @param loss the smoothed training loss
     * @param tokensPerSecond throughput of the latest steps
     */
    public void update(int step, double loss, double tokensPerSecond) {
        double done = (double) step / total;
        int decile = (int) (done * 10);
        if (!terminal && decile == lastDecile && step != total) {
            return;
        }
        lastDecile = decile;
        double elapsed = (System.nanoTime() - startNanos) / 1e9;
        double left = step > first ? elapsed / (step - first) * (total - step) : 0;
        int filled = (int) Math.round(done * WIDTH);
        String bar = "#".repeat(filled) + ".".repeat(WIDTH - filled);
        String line = String.format(Locale.ROOT, "[%s] %d/%d  loss %.4f  %,.0f tok/s  %s left",
                bar, step, total, loss, tokensPerSecond, duration(left));
        if (terminal) {
            out.print("\r" + line + (step == total ? "\n" : ""));
        } else {
            out.println(line);
        }
        out.flush();
    }

    /**
     * Formats seconds as {@code 1m05s}.
     *
     * @param seconds a duration
     * @return the text
     */
    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }
}
