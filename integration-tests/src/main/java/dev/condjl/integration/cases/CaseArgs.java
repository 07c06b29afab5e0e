package dev.condjl.integration.cases;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Typed, checked access to a case file's {@code config} or {@code forward} object. Every getter names the section
 * and key in its error; {@link #rejectUnknown()} turns a misspelt keyword argument into an error instead of a
 * silently ignored default.
 */
public final class CaseArgs {

    private final String section;
    private final JsonObject json;
    private final Set<String> read = new HashSet<>();

    /**
     * Wraps one section of a case file.
     *
     * @param section {@code config} or {@code forward}, for messages
     * @param json the section; null is read as empty
     */
    public CaseArgs(String section, JsonObject json) {
        this.section = section;
        this.json = json == null ? new JsonObject() : json;
    }

    /**
     * Returns a required integer.
     *
     * @param key the keyword argument
     * @return its value
     * @throws IllegalArgumentException if it is absent or not an integer
     */
    public int getInt(String key) {
        JsonElement value = require(key);
        try {
            double number = value.getAsDouble();
            if (number != Math.rint(number) || Math.abs(number) > Integer.MAX_VALUE) {
                throw new NumberFormatException();
            }
            return (int) number;
        } catch (RuntimeException e) {
            throw wrongType(key, "an integer", value);
        }
    }

    /**
     * Returns an integer with a default.
     *
     * @param key the keyword argument
     * @param defaultValue the value when absent or null
     * @return its value
     */
    public int getInt(String key, int defaultValue) {
        return isAbsent(key) ? defaultValue : getInt(key);
    }

    /**
     * Returns an optional number.
     *
     * @param key the keyword argument
     * @return its value, or null when absent or null
     * @throws IllegalArgumentException if it is not a number
     */
    public Double getDouble(String key) {
        if (isAbsent(key)) {
            return null;
        }
        JsonElement value = json.get(key);
        if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isNumber()) {
            throw wrongType(key, "a number", value);
        }
        return value.getAsDouble();
    }

    /**
     * Returns a number with a default.
     *
     * @param key the keyword argument
     * @param defaultValue the value when absent or null
     * @return its value
     */
    public double getDouble(String key, double defaultValue) {
        Double value = getDouble(key);
        return value == null ? defaultValue : value;
    }

    /**
     * Returns a boolean with a default.
     *
     * @param key the keyword argument
     * @param defaultValue the value when absent or null
     * @return its value
     */
    public boolean getBoolean(String key, boolean defaultValue) {
        if (isAbsent(key)) {
            return defaultValue;
        }
        JsonElement value = json.get(key);
        if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isBoolean()) {
            throw wrongType(key, "true or false", value);
        }
        return value.getAsBoolean();
    }

    /**
     * Returns a string with a default.
     *
     * @param key the keyword argument
     * @param defaultValue the value when absent or null
     * @return its value
     */
    public String getString(String key, String defaultValue) {
        if (isAbsent(key)) {
            return defaultValue;
        }
        JsonElement value = json.get(key);
        if (!value.isJsonPrimitive() || !value.getAsJsonPrimitive().isString()) {
            throw wrongType(key, "a string", value);
        }
        return value.getAsString();
    }

    /**
     * Returns a nested object.
     *
     * @param key the key
     * @return its value, empty when absent or null
     * @throws IllegalArgumentException if it is not a JSON object
     */
    public JsonObject getObject(String key) {
        if (isAbsent(key)) {
            return new JsonObject();
        }
        JsonElement value = json.get(key);
        if (!value.isJsonObject()) {
            throw wrongType(key, "a JSON object", value);
        }
        return value.getAsJsonObject();
    }

    /**
     * Returns an enum constant written in lower case ({@code "by_input"} for {@code BY_INPUT}), with a default.
     *
     * @param key the keyword argument
     * @param type the enum class
     * @param defaultValue the value when absent or null
     * @param <E> the enum type
     * @return its value
     * @throws IllegalArgumentException if it names no constant
     */
    public <E extends Enum<E>> E getEnum(String key, Class<E> type, E defaultValue) {
        String name = getString(key, null);
        if (name == null) {
            return defaultValue;
        }
        for (E constant : type.getEnumConstants()) {
            if (constant.name().toLowerCase(Locale.ROOT).equals(name)) {
                return constant;
            }
        }
        List<String> known = new ArrayList<>();
        for (E constant : type.getEnumConstants()) {
            known.add(constant.name().toLowerCase(Locale.ROOT));
        }
        throw new IllegalArgumentException(section + "." + key + " must be one of " + known + ", got \"" + name
                + "\"");
    }

    /**
     * Fails on keys that no getter asked for.
     *
     * @throws IllegalArgumentException naming the unknown keys and the known ones
     */
    public void rejectUnknown() {
        rejectUnread(section + ": unknown key(s) ", json.keySet(), read);
    }

    /** Fails with {@code what + names} when {@code present} holds names outside {@code read}. */
    static void rejectUnread(String what, Set<String> present, Set<String> read) {
        Set<String> unknown = new TreeSet<>(present);
        unknown.removeAll(read);
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException(what + unknown + " (known: " + new TreeSet<>(read) + ")");
        }
    }

    private boolean isAbsent(String key) {
        read.add(key);
        return !json.has(key) || json.get(key).isJsonNull();
    }

    private JsonElement require(String key) {
        if (isAbsent(key)) {
            throw new IllegalArgumentException(section + "." + key + " is required");
        }
        return json.get(key);
    }

    private IllegalArgumentException wrongType(String key, String expected, JsonElement value) {
        return new IllegalArgumentException(section + "." + key + " must be " + expected + ", got " + value);
    }
}
