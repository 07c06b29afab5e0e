package dev.condjl.colt5;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A reference module's keyword arguments (e.g. parsed from JSON), read with the reference's defaults; every key
 * must be consumed or declared ignorable, so typos fail loudly.
 */
final class Kwargs {

    private final String owner;
    private final Map<String, Object> values;
    private final Set<String> used = new TreeSet<>();

    Kwargs(String owner, Map<String, ?> values) {
        this.owner = owner;
        this.values = values == null ? Map.of() : new LinkedHashMap<>(values);
    }

    int requiredInt(String key) {
        if (!values.containsKey(key) || values.get(key) == null) {
            throw new IllegalArgumentException(owner + ": missing required argument '" + key + "'");
        }
        return toInt(key, values.get(key));
    }

    int getInt(String key, int fallback) {
        Integer v = getOptInt(key, fallback);
        if (v == null) {
            throw new IllegalArgumentException(owner + ": argument '" + key + "' must not be None");
        }
        return v;
    }

    Integer getOptInt(String key, Integer fallback) {
        used.add(key);
        if (!values.containsKey(key)) {
            return fallback;
        }
        Object v = values.get(key);
        return v == null ? null : toInt(key, v);
    }

    double getDouble(String key, double fallback) {
        Double v = getOptDouble(key, fallback);
        if (v == null) {
            throw new IllegalArgumentException(owner + ": argument '" + key + "' must not be None");
        }
        return v;
    }

    Double getOptDouble(String key, Double fallback) {
        used.add(key);
        if (!values.containsKey(key)) {
            return fallback;
        }
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        throw new IllegalArgumentException(owner + ": argument '" + key + "' must be a number, got " + v);
    }

    boolean getBool(String key, boolean fallback) {
        used.add(key);
        Object v = values.get(key);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new IllegalArgumentException(owner + ": argument '" + key + "' must be true or false, got " + v);
    }

    String getString(String key, String fallback) {
        used.add(key);
        Object v = values.get(key);
        return v == null ? fallback : v.toString();
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> getMap(String key) {
        used.add(key);
        Object v = values.get(key);
        if (v == null) {
            return Map.of();
        }
        if (v instanceof Map<?, ?> m) {
            return (Map<String, Object>) m;
        }
        throw new IllegalArgumentException(owner + ": argument '" + key + "' must be a dict, got " + v);
    }

    /** Marks keys that the reference accepts but that have no effect here. */
    void ignore(String... keys) {
        used.addAll(Set.of(keys));
    }

    /** Fails on keys never read. */
    void checkAllUsed() {
        Set<String> unknown = new TreeSet<>(values.keySet());
        unknown.removeAll(used);
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException(owner + ": unknown arguments " + unknown);
        }
    }

    private int toInt(String key, Object v) {
        if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
            used.add(key);
            return n.intValue();
        }
        throw new IllegalArgumentException(owner + ": argument '" + key + "' must be an integer, got " + v);
    }
}
