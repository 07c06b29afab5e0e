package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.util.JsonUtils;
import com.google.gson.reflect.TypeToken;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The parity fixtures under {@code src/test/resources/colt5} (made by {@code gen_fixtures.py} beside them). */
final class Fixtures {

    /** One entry of {@code cases.json}. */
    record Case(
            String name,
            String module,
            Map<String, Object> config,
            Map<String, Object> forward,
            List<String> inputs,
            List<String> outputs,
            Double minGap,
            String referenceError) {}

    private Fixtures() {}

    static List<Case> cases() {
        try (Reader r = new InputStreamReader(open("cases.json"), StandardCharsets.UTF_8)) {
            List<Map<String, Object>> raw =
                    JsonUtils.GSON.fromJson(r, new TypeToken<List<Map<String, Object>>>() {}.getType());
            return raw.stream().map(Fixtures::toCase).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Case toCase(Map<String, Object> m) {
        Object gap = m.get("min_gap");
        return new Case(
                (String) m.get("name"),
                (String) m.get("module"),
                (Map<String, Object>) m.get("config"),
                (Map<String, Object>) m.get("forward"),
                (List<String>) m.get("inputs"),
                (List<String>) m.get("outputs"),
                gap == null ? null : ((Number) gap).doubleValue(),
                (String) m.get("reference_error"));
    }

    /** A safetensors fixture as a name-to-array map, in file order. */
    static Map<String, NDArray> load(NDManager manager, String file) {
        try (InputStream in = open(file)) {
            NDList list = NDList.decode(manager, in.readAllBytes());
            Map<String, NDArray> out = new LinkedHashMap<>();
            for (NDArray a : list) {
                out.put(a.getName(), a);
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static InputStream open(String file) {
        InputStream in = Fixtures.class.getResourceAsStream("/colt5/" + file);
        if (in == null) {
            throw new IllegalStateException("missing fixture colt5/" + file + "; run gen_fixtures.py");
        }
        return in;
    }
}
