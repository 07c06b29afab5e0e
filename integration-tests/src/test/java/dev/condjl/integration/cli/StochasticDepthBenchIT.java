package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code condjl bench stochastic-depth} on a tiny stack: one fresh JVM per mode, JSON out. */
class StochasticDepthBenchIT {

    @Test
    void printsOneLinePerModeAndASummary() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process process =
                new ProcessBuilder(
                                java,
                                "-jar",
                                System.getProperty("condjl.jar"),
                                "bench",
                                "stochastic-depth",
                                "--layers",
                                "1",
                                "--dim",
                                "16",
                                "--heads",
                                "2",
                                "--batch",
                                "8",
                                "--tokens",
                                "5",
                                "--steps",
                                "2",
                                "--warmup",
                                "0")
                        .redirectError(ProcessBuilder.Redirect.INHERIT)
                        .start();
        List<JsonObject> lines = new ArrayList<>();
        try (BufferedReader out =
                new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                lines.add(JsonParser.parseString(line).getAsJsonObject());
            }
        }
        assertEquals(0, process.waitFor());
        assertEquals(4, lines.size(), lines.toString());
        String[] modes = {"none", "drop-path", "batch-subset"};
        for (int i = 0; i < modes.length; i++) {
            JsonObject r = lines.get(i);
            assertEquals(modes[i], r.get("mode").getAsString());
            double peak = r.get("peak_rss_mib").getAsDouble();
            double baseline = r.get("baseline_rss_mib").getAsDouble();
            assertTrue(baseline > 0 && peak >= baseline, r.toString());
            assertTrue(r.get("ms_median").getAsDouble() > 0, r.toString());
            assertTrue(r.get("memory").getAsString().contains("VmHWM"), r.toString());
        }
        JsonObject summary = lines.get(3);
        assertTrue(summary.has("peak_rss_reduction_vs_none_pct"), summary.toString());
        assertTrue(summary.has("speed_target_met"), summary.toString());
    }
}
