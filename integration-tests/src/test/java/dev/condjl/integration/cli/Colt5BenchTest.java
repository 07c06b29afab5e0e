package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.EngineException;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import dev.condjl.cuda.MatrixProducts;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** {@code condjl bench colt5} at tiny sizes on the CPU: the table, the JSON lines, out-of-memory rows, defaults. */
class Colt5BenchTest {

    /** The table's data rows, each split into its cells. */
    private static List<List<String>> rows(String out) {
        return out.lines().filter(l -> l.startsWith("| ") && !l.startsWith("| n |") && !l.startsWith("| --- |"))
                .map(l -> Arrays.stream(l.substring(1, l.length() - 1).split("\\|")).map(String::trim)
                        .collect(Collectors.toList()))
                .collect(Collectors.toList());
    }

    @Test
    void printsTheDeviceAndOneRowPerLengthWithPositiveTimes(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("colt5.jsonl");
        String out = CliOutput.success("bench", "colt5", "--device", "cpu", "--dim", "16", "--heads", "2", "--window",
                "8", "--seq", "32,64", "--warmup", "1", "--warmup-seconds", "0.5", "--reps", "2", "--json",
                json.toString());
        assertTrue(out.startsWith("condjl bench colt5 on cpu()"), out);
        assertTrue(out.contains("| n | condjl routed | DJL dense TransformerEncoderBlock | routed / dense |"), out);
        List<List<String>> rows = rows(out);
        assertEquals(2, rows.size(), out);
        assertEquals(List.of("32", "64"), rows.stream().map(r -> r.get(0)).collect(Collectors.toList()));
        for (List<String> row : rows) {
            assertEquals(4, row.size(), row.toString());
            for (String cell : row.subList(1, 4)) {
                assertTrue(Double.parseDouble(cell) > 0, row.toString());
            }
        }

        List<JsonObject> lines = Files.readAllLines(json).stream()
                .map(l -> JsonParser.parseString(l).getAsJsonObject()).collect(Collectors.toList());
        assertEquals(6, lines.size(), lines.toString());
        JsonObject routed = lines.get(0);
        assertEquals("ConditionalRoutedTransformerBlock", routed.get("model").getAsString());
        assertEquals("cpu()", routed.get("device").getAsString());
        assertEquals(4, routed.get("heavy_tokens").getAsInt());
        assertEquals("INPUT", routed.get("attention_precision").getAsString());
        assertEquals("float32", routed.get("matrix_products").getAsString());
        assertEquals(2, routed.get("reps").getAsInt());
        assertEquals(0.5, routed.get("warmup_seconds").getAsDouble());
        // half a second of runs of a 16-wide block of 32 tokens is many runs, not the one --warmup asks for
        assertTrue(routed.get("warmup_runs").getAsInt() > 1, routed.toString());
        assertTrue(routed.get("fwdbwd_ms").getAsDouble() > 0);
        // every run's host part ends before its end, so the median does too
        double host = routed.get("host_ms").getAsDouble();
        assertTrue(host > 0 && host <= routed.get("fwdbwd_ms").getAsDouble(), routed.toString());
        assertEquals("TransformerEncoderBlock", lines.get(1).get("model").getAsString());
        assertTrue(lines.get(2).get("routed_over_dense").getAsDouble() > 0);
        assertEquals(64, lines.get(5).get("n").getAsInt());
    }

    @Test
    void noDenseTimesOnlyTheRoutedBlockInTheAttentionPrecisionAsked() {
        String out = CliOutput.success("bench", "colt5", "--device", "cpu", "--dim", "16", "--heads", "2", "--window",
                "8", "--seq", "48", "--warmup", "0", "--warmup-seconds", "0", "--reps", "1", "--no-dense",
                "--attention-precision", "BFLOAT16");
        assertTrue(out.contains("routed attention in BFLOAT16"), out);
        assertTrue(out.contains("| n | condjl routed |" + System.lineSeparator()), out);
        assertFalse(out.contains("TransformerEncoderBlock"), out);
        List<List<String>> rows = rows(out);
        assertEquals(1, rows.size(), out);
        assertEquals("48", rows.get(0).get(0));
        assertTrue(Double.parseDouble(rows.get(0).get(1)) > 0, out);
    }

    @Test
    void sampleStacksPrintsWhereTheRoutedRunsSpentTheirTime() {
        String out = CliOutput.success("bench", "colt5", "--device", "cpu", "--dim", "16", "--heads", "2", "--window",
                "8", "--seq", "48", "--warmup", "0", "--warmup-seconds", "0", "--reps", "20", "--no-dense",
                "--sample-stacks");
        assertTrue(out.contains("stack samples n=48: "), out);
        assertTrue(out.contains("top frames:") && out.contains(" (native)"), out);
        // twenty forward+backward runs of the block are under its forward, whatever else the samples saw
        assertTrue(out.contains("dev.condjl.colt5.ConditionalRoutedTransformerBlock.forwardInternal"), out);
    }

    @Test
    void profileTracesOneWarmRoutedRunAndCountsItsOps(@TempDir Path dir) throws IOException {
        Path trace = dir.resolve("routed.json");
        String out = CliOutput.success("bench", "colt5", "--device", "cpu", "--dim", "16", "--heads", "2", "--window",
                "8", "--seq", "48", "--warmup", "1", "--warmup-seconds", "0", "--reps", "1", "--no-dense",
                "--profile", trace.toString());
        assertTrue(out.contains("profile n=48 (" + trace + "): forward "), out);
        assertTrue(Files.size(trace) > 0, trace.toString());
    }

    @Test
    void tf32IsAllowedForTheRunAndRestoredAfterIt() {
        assertFalse(MatrixProducts.tf32());
        String out = CliOutput.success("bench", "colt5", "--device", "cpu", "--dim", "16", "--heads", "2", "--window",
                "8", "--seq", "48", "--warmup", "0", "--warmup-seconds", "0", "--reps", "1", "--no-dense", "--tf32");
        assertTrue(out.contains("matrix products in TF32"), out);
        assertEquals(1, rows(out).size(), out);
        assertFalse(MatrixProducts.tf32());
    }

    @Test
    void aModelOutOfMemoryIsARowEntryNotAFailure() {
        Map<String, Double> millis = new LinkedHashMap<>();
        millis.put("routed", 34.9);
        millis.put("dense", null);
        assertEquals("| 65,536 | 34.90 | out of memory | |", Colt5Bench.tableRow(65536, millis));
        assertTrue(Colt5Bench.isOutOfMemory(new EngineException("CUDA out of memory. Tried to allocate 128.00 GiB")));
        assertTrue(Colt5Bench.isOutOfMemory(new IllegalStateException("forward failed",
                new EngineException("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"))));
        assertTrue(Colt5Bench.isOutOfMemory(new OutOfMemoryError("Java heap space")));
        assertFalse(Colt5Bench.isOutOfMemory(new IllegalArgumentException("numHeavyTokensQ (0) must be > 0")));
    }

    @Test
    void eachBenchKeepsItsOwnRepetitionDefaults() {
        String colt5 = CliOutput.success("bench", "colt5", "--help");
        String coorDescent = CliOutput.success("bench", "coor-descent", "--help");
        assertTrue(colt5.contains("Timed runs (default: 5)."), colt5);
        assertTrue(colt5.contains("Untimed runs first (default: 2)."), colt5);
        assertTrue(colt5.replaceAll("\\s+", " ").contains("call (default: 5.0)."), colt5);
        assertTrue(coorDescent.replaceAll("\\s+", " ").contains("call (default: 0.0)."), coorDescent);
        assertTrue(coorDescent.contains("Timed runs (default: 10)."), coorDescent);
        assertTrue(coorDescent.contains("Untimed runs first (default: 5)."), coorDescent);
        assertTrue(colt5.contains("--device=DEVICE") && coorDescent.contains("--device=DEVICE"), colt5);
        assertNotEquals(-1, colt5.indexOf("--threads"));
    }

    @Test
    void rejectsANegativeWarmUpTime() {
        assertUsageError("--warmup-seconds (-1.0) in [0, 3600]", "--warmup-seconds", "-1");
    }

    @Test
    void rejectsACudaGraphOnTheCpuAndBesideAProfile() {
        assertUsageError("--cuda-graph: CUDA graphs need a GPU device, got cpu()", "--device", "cpu",
                "--cuda-graph");
        assertUsageError("--profile and --sample-stacks time eager runs", "--cuda-graph", "--sample-stacks");
    }

    @Test
    void rejectsAnUnknownDevice() {
        assertUsageError("--device (tpu) must be cpu, gpu or gpu:N", "--device", "tpu");
    }

    /** {@code bench colt5 --seq 32} with {@code options} exits with picocli's usage code and {@code message}. */
    private static void assertUsageError(String message, String... options) {
        List<String> args = new ArrayList<>(List.of("bench", "colt5", "--seq", "32"));
        args.addAll(List.of(options));
        String err = CliOutput.usageError(args.toArray(String[]::new));
        assertTrue(err.contains(message), err);
    }
}
