package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.stream.Collectors;

/** {@code condjl bench coor-descent}: the JSON lines' fields on a tiny case (no timing assertions). */
class CoorDescentBenchTest {

    @Test
    void printsOneJsonLinePerImpl() {
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new Condjl());
        cli.setOut(new PrintWriter(out, true));
        int code = cli.execute("bench", "coor-descent", "--rows", "3", "--n", "16", "--k", "4", "--iters", "2",
                "--warmup", "0", "--reps", "1", "--impl", "unrolled,auto");
        assertEquals(0, code);
        List<JsonObject> lines = out.toString().lines().map(l -> JsonParser.parseString(l).getAsJsonObject())
                .collect(Collectors.toList());
        assertEquals(2, lines.size(), out.toString());
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
