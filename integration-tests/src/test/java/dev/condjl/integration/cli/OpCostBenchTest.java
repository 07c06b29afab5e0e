package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.condjl.cuda.FusedLinear;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.Collectors;

/** {@code condjl bench op-costs}: one table row per op with both times (no timing assertions), and its refusals. */
class OpCostBenchTest {

    @Test
    void printsOneRowPerOpWithTheSyncTimeAtLeastTheHostTime() {
        String text = CliOutput.success("bench", "op-costs", "--device", "cpu", "--seq", "64", "--dim", "16",
                "--calls", "5", "--warmup", "1", "--warmup-seconds", "0", "--reps", "3");
        assertTrue(text.startsWith("condjl bench op-costs on cpu(): x (1, 64, 16)"), text);
        List<String[]> rows = text.lines()
                .filter(l -> l.startsWith("| ") && !l.startsWith("| op |") && !l.startsWith("| --- |"))
                .map(l -> l.substring(2, l.length() - 2).split(" \\| ")).collect(Collectors.toList());
        List<String> names = rows.stream().map(r -> r[0]).collect(Collectors.toList());
        assertTrue(names.containsAll(List.of("add", "mul", "sum(-1)", "gather(-1)", "reshape", "transpose",
                "matMul(w.transpose()) -> 48", "matMul(u), a vector")), names.toString());
        // the fused linear layer where the native library loaded (not on the class path of the SLF4J run)
        assertEquals(FusedLinear.unavailableReason().isEmpty(), names.contains("linear (FusedLinear) -> 48"),
                names.toString());
        for (String[] row : rows) {
            double host = Double.parseDouble(row[1]);
            double sync = Double.parseDouble(row[2]);
            // every run's host part ends before the run does, so the medians keep that order
            assertTrue(host > 0 && sync >= host, String.join(" | ", row));
        }
    }

    @Test
    void rejectsADimThatTheAttentionHeadsDoNotDivide() {
        String err = CliOutput.usageError("bench", "op-costs", "--dim", "12");
        assertTrue(err.contains("--dim (12) a positive multiple of 8"), err);
    }
}
