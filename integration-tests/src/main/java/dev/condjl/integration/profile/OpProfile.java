package dev.condjl.integration.profile;

import ai.djl.pytorch.jni.JniUtils;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Host-side op counts of one forward+backward, from a PyTorch profiler trace (DJL's {@code JniUtils.startProfile} /
 * {@code stopProfile}, chrome-trace JSON). The cost of a small routed block on a GPU is per op (JNI, dispatcher,
 * launch) and per autograd node, not per flop, so these counts are what host-overhead work must bring down; they do
 * not depend on the device.
 *
 * <p>An op is top-level when no other event of its thread encloses it. Top-level events named
 * {@code autograd::engine::evaluate_function: ...} are backward nodes; the other top-level events before the first
 * backward node are the forward's ops (what Java issued), the rest (the loss's backward root, gradient reads) are
 * counted as {@code other}.
 *
 * @param forwardOps top-level forward ops by name, most frequent first
 * @param backwardNodes autograd nodes by name (without the {@code evaluate_function} prefix), most frequent first
 * @param other top-level events after the forward that are not autograd nodes
 */
public record OpProfile(Map<String, Integer> forwardOps, Map<String, Integer> backwardNodes, int other) {

    /** The name prefix of an autograd node's event. */
    public static final String NODE_PREFIX = "autograd::engine::evaluate_function: ";

    /**
     * Profiles one run.
     *
     * @param trace where the chrome trace goes
     * @param run the forward+backward to profile
     * @return its counts
     * @throws IOException if the trace cannot be read back
     */
    public static OpProfile record(Path trace, Runnable run) throws IOException {
        JniUtils.startProfile(false, false, false);
        try {
            run.run();
        } finally {
            JniUtils.stopProfile(trace.toString());
        }
        return parse(trace);
    }

    /**
     * Counts a trace.
     *
     * @param trace a chrome-trace JSON file (an object with {@code traceEvents}, or a bare event array)
     * @return the counts
     * @throws IOException if it cannot be read
     */
    public static OpProfile parse(Path trace) throws IOException {
        JsonElement root;
        try (Reader r = Files.newBufferedReader(trace, StandardCharsets.UTF_8)) {
            root = JsonParser.parseReader(r);
        }
        JsonArray events = root.isJsonArray() ? root.getAsJsonArray() : root.getAsJsonObject().getAsJsonArray(
                "traceEvents");
        List<Event> complete = new ArrayList<>();
        for (JsonElement e : events) {
            JsonObject o = e.getAsJsonObject();
            if (!o.has("ph") || !"X".equals(o.get("ph").getAsString()) || !o.has("dur")) {
                continue;
            }
            String thread = String.valueOf(o.get("pid")) + "/" + o.get("tid");
            complete.add(new Event(o.get("name").getAsString(), thread, o.get("ts").getAsDouble(),
                    o.get("dur").getAsDouble()));
        }
        // enclosing events first: earlier start, then longer
        complete.sort(Comparator.comparingDouble(Event::ts).thenComparing(Comparator.comparingDouble(Event::dur)
                .reversed()));
        Map<String, Double> openUntil = new HashMap<>();
        List<Event> top = new ArrayList<>();
        for (Event ev : complete) {
            double end = openUntil.getOrDefault(ev.thread, Double.NEGATIVE_INFINITY);
            if (ev.ts >= end) {
                top.add(ev);
                openUntil.put(ev.thread, ev.ts + ev.dur);
            }
        }
        double firstNode = top.stream().filter(ev -> ev.name.startsWith(NODE_PREFIX)).mapToDouble(Event::ts).min()
                .orElse(Double.POSITIVE_INFINITY);
        Map<String, Integer> forward = new HashMap<>();
        Map<String, Integer> backward = new HashMap<>();
        int other = 0;
        for (Event ev : top) {
            if (ev.name.startsWith(NODE_PREFIX)) {
                backward.merge(ev.name.substring(NODE_PREFIX.length()), 1, Integer::sum);
            } else if (ev.ts < firstNode) {
                forward.merge(ev.name, 1, Integer::sum);
            } else {
                other++;
            }
        }
        return new OpProfile(sorted(forward), sorted(backward), other);
    }

    private record Event(String name, String thread, double ts, double dur) {}

    /** The counts, most frequent first, then by name. */
    static Map<String, Integer> sorted(Map<String, Integer> counts) {
        return counts.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed()
                        .thenComparing(Map.Entry.comparingByKey()))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue, (a, b) -> a, LinkedHashMap::new));
    }

    /**
     * Forward ops in all.
     *
     * @return the sum of {@link #forwardOps}
     */
    public int forwardTotal() {
        return forwardOps.values().stream().mapToInt(Integer::intValue).sum();
    }

    /**
     * Backward nodes in all.
     *
     * @return the sum of {@link #backwardNodes}
     */
    public int backwardTotal() {
        return backwardNodes.values().stream().mapToInt(Integer::intValue).sum();
    }

    /**
     * A summary line with the most frequent names.
     *
     * @param top how many names of each kind to list
     * @return e.g. {@code forward 319 ops (aten::reshape 52, ...); backward 243 autograd nodes (...); other 3}
     */
    public String describe(int top) {
        return String.format(Locale.ROOT, "forward %d top-level ops (%s); backward %d autograd nodes (%s); other %d",
                forwardTotal(), head(forwardOps, top), backwardTotal(), head(backwardNodes, top), other);
    }

    private static String head(Map<String, Integer> counts, int top) {
        return counts.entrySet().stream().limit(top).map(e -> e.getKey() + " " + e.getValue())
                .collect(Collectors.joining(", "));
    }
}
