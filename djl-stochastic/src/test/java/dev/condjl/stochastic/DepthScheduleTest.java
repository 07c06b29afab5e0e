package dev.condjl.stochastic;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import org.junit.jupiter.api.Test;

/** The linear per-layer schedule, spec dropout-stochastic.md §1.4 and §2.1. */
class DepthScheduleTest {

    @Test
    void matchesNumpyLinspaceBitForBit() throws Exception {
        // np.linspace(0, p, depth) from gen_fixtures.py; exact equality matters because AUTO
        // compares each rate with 0.1
        for (JsonElement e : TestArrays.readJson("linear_rates.json").getAsJsonArray("schedules")) {
            JsonObject s = e.getAsJsonObject();
            double[] expected = new double[s.getAsJsonArray("rates").size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = s.getAsJsonArray("rates").get(i).getAsDouble();
            }
            double p = s.get("p").getAsDouble();
            int depth = s.get("depth").getAsInt();
            assertArrayEquals(
                    expected, DepthSchedule.linear(p, depth), 0.0, "p=" + p + " depth=" + depth);
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> DepthSchedule.linear(0.4, 0));
        assertThrows(IllegalArgumentException.class, () -> DepthSchedule.linear(1.2, 4));
    }
}
