package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.Collectors;

/** {@code condjl bench coor-descent}: the JSON lines' fields on a tiny case (no timing assertions). */
class CoorDescentBenchTest {

    @Test
    void printsOneJsonLinePerImpl() {
        String out = CliOutput.success("bench", "coor-descent", "--rows", "3", "--n", "16", "--k", "4", "--iters",
                "2", "--warmup", "0", "--reps", "1", "--impl", "unrolled,auto");
        List<JsonObject> lines = out.lines().map(l -> JsonParser.parseString(l).getAsJsonObject())
                .collect(Collectors.toList());
        assertEquals(2, lines.size(), out);
        assertEquals("unrolled", lines.get(0).get("impl").getAsString());
        assertEquals("auto", lines.get(1).get("impl").getAsString());
        for (JsonObject line : lines) {
            assertEquals(3, line.get("rows").getAsInt());
            assertEquals(16, line.get("n").getAsInt());
            assertEquals(4, line.get("k").getAsInt());
            assertEquals(2, line.get("iters").getAsInt());
            assertTrue(line.get("fwd_ms").getAsDouble() > 0 && line.get("fwdbwd_ms").getAsDouble() > 0, line.toString());
        }
    }
}
