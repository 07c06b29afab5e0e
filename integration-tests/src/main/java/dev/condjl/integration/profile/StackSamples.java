package dev.condjl.integration.profile;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;

/**
 * Where one thread's time goes, by sampling its stack from a daemon thread: for a host-bound GPU step, how much of
 * the host's time each JNI entry (a libtorch op, a condjl kernel) and the Java between them take. It needs nothing
 * but the JVM (runtimes without Flight Recorder included); samples are taken at safepoints, so a thread in native
 * code is seen where it is and Java frames are seen at their nearest safepoint.
 *
 * <p>Two counts: by the top frame ({@code self}: a native method is the JNI call itself), and for each method of a
 * package, the samples with that method anywhere on the stack ({@code inclusive}).
 */
public final class StackSamples implements AutoCloseable {

    private final Thread target;
    private final List<String> inclusivePrefixes;
    private final long periodNanos;
    private final Thread sampler;
    private final Map<String, Integer> self = new HashMap<>();
    private final Map<String, Integer> inclusive = new HashMap<>();
    private volatile boolean running = true;
    private int samples;

    private StackSamples(Thread target, List<String> inclusivePrefixes, long periodMicros) {
        this.target = target;
        this.inclusivePrefixes = List.copyOf(inclusivePrefixes);
        this.periodNanos = periodMicros * 1000;
        sampler = new Thread(this::sample, "stack-samples");
        sampler.setDaemon(true);
    }

    /**
     * Starts sampling.
     *
     * @param target the thread to sample
     * @param inclusivePrefixes the class-name prefixes whose methods get inclusive counts, e.g.
     *     {@code dev.condjl.colt5.}; lambdas are left out
     * @param periodMicros time between samples, {@code >= 1}
     * @return the running sampler; {@link #close} stops it
     * @throws IllegalArgumentException if the period is not positive
     */
    public static StackSamples start(Thread target, List<String> inclusivePrefixes, long periodMicros) {
        if (periodMicros < 1) {
            throw new IllegalArgumentException("periodMicros (" + periodMicros + ") must be >= 1");
        }
        StackSamples s = new StackSamples(target, inclusivePrefixes, periodMicros);
        s.sampler.start();
        return s;
    }

    private void sample() {
        while (running) {
            StackTraceElement[] stack = target.getStackTrace();
            if (stack.length > 0) {
                synchronized (this) {
                    samples++;
                    self.merge(name(stack[0]), 1, Integer::sum);
                    Set<String> seen = new HashSet<>();
                    for (StackTraceElement frame : stack) {
                        String method = frame.getClassName() + "." + frame.getMethodName();
                        if (counted(method) && seen.add(method)) {
                            inclusive.merge(method, 1, Integer::sum);
                        }
                    }
                }
            }
            LockSupport.parkNanos(periodNanos);
        }
    }

    private boolean counted(String method) {
        return !method.contains("lambda$") && !method.contains("$$Lambda")
                && inclusivePrefixes.stream().anyMatch(method::startsWith);
    }

    private static String name(StackTraceElement frame) {
        String simple = frame.getClassName().substring(frame.getClassName().lastIndexOf('.') + 1);
        return simple + "." + frame.getMethodName() + (frame.isNativeMethod() ? " (native)" : "");
    }

    /** Stops sampling and waits for the sampler to end. */
    @Override
    public void close() {
        running = false;
        try {
            sampler.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Samples taken.
     *
     * @return the count
     */
    public synchronized int samples() {
        return samples;
    }

    /**
     * Samples by top frame ({@code SimpleClass.method}, {@code (native)} for a JNI method), most frequent first.
     *
     * @return a copy of the counts
     */
    public synchronized Map<String, Integer> self() {
        return OpProfile.sorted(self);
    }

    /**
     * Samples with each method of the inclusive prefix on the stack, most frequent first.
     *
     * @return a copy of the counts, keyed by full class name and method
     */
    public synchronized Map<String, Integer> inclusive() {
        return OpProfile.sorted(inclusive);
    }

    /**
     * A report: the sample count, then the {@code top} most frequent top frames and inclusive methods with their
     * share of the samples, one per line.
     *
     * @param top how many of each to list
     * @return the lines
     */
    public synchronized String describe(int top) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%,d samples%n", samples));
        sb.append("top frames:").append(System.lineSeparator()).append(lines(OpProfile.sorted(self), top));
        sb.append("inclusive (").append(String.join(", ", inclusivePrefixes)).append("):")
                .append(System.lineSeparator())
                .append(lines(OpProfile.sorted(inclusive), top));
        return sb.toString();
    }

    private String lines(Map<String, Integer> counts, int top) {
        return counts.entrySet().stream().limit(top)
                .map(e -> String.format(Locale.ROOT, "  %5.1f%%  %s%n", 100.0 * e.getValue() / samples, e.getKey()))
                .collect(Collectors.joining());
    }
}
