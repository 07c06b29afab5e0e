package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import dev.condjl.cuda.CondjlOps;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.Collectors;

/** {@code condjl bench top-k}: the JSON lines' fields on tiny cases (no timing assertions), and its refusals. */
class TopKBenchTest {

    @Test
    void printsOneJsonLinePerLengthAndImpl() {
        String out = CliOutput.success("bench", "top-k", "--device", "cpu", "--rows", "2", "--seq", "64,300",
                "--k-share", "4", "--warmup", "0", "--reps", "2");
        List<JsonObject> lines = out.lines().map(l -> JsonParser.parseString(l).getAsJsonObject())
                .collect(Collectors.toList());
        // condjl's line where its native library loaded (not on the class path of the SLF4J run)
        List<String> impls = CondjlOps.isAvailable() ? List.of("condjl", "djl-topK") : List.of("djl-topK");
        assertEquals(2 * impls.size(), lines.size(), out);
        for (int i = 0; i < lines.size(); i++) {
            JsonObject line = lines.get(i);
            assertEquals(impls.get(i % impls.size()), line.get("impl").getAsString());
            assertEquals("cpu()", line.get("device").getAsString());
            assertEquals(2, line.get("rows").getAsInt());
            int n = i < impls.size() ? 64 : 300;
            assertEquals(n, line.get("n").getAsInt());
            assertEquals(n / 4, line.get("k").getAsInt());
            assertTrue(line.get("ms").getAsDouble() > 0 && line.get("host_ms").getAsDouble() > 0, line.toString());
        }
    }

    @Test
    void refusesASequenceShorterThanItsShare() {
        String err = CliOutput.usageError("bench", "top-k", "--device", "cpu", "--seq", "4", "--k-share", "8");
        assertTrue(err.contains("--k-share"), err);
    }
}
