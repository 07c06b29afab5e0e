package dev.condjl.integration.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** {@link OpProfile}: top-level ops and autograd nodes of a chrome trace, and of a profiled DJL run. */
class OpProfileTest {

    private static String event(String name, int tid, double ts, double dur) {
        return String.format(java.util.Locale.ROOT,
                "{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"%s\", \"pid\": 1, \"tid\": %d, \"ts\": %.1f,"
                        + " \"dur\": %.1f}", name, tid, ts, dur);
    }

    @Test
    void countsOnlyEventsThatNoOtherEventOfTheirThreadEncloses(@TempDir Path dir) throws IOException {
        String node = OpProfile.NODE_PREFIX;
        List<String> events = List.of(
                event("aten::matmul", 1, 0, 10), event("aten::mm", 1, 1, 8),          // mm inside matmul
                event("aten::reshape", 1, 10, 2), event("aten::view", 1, 10, 1),      // same start, shorter: inside
                event("aten::reshape", 1, 20, 1),
                event("aten::fill_", 2, 3, 1),                                          // another thread: top-level
                event(node + "MmBackward0", 1, 30, 5), event("aten::mm", 1, 31, 2),
                event(node + "MmBackward0", 3, 32, 5), event("aten::ones_like", 1, 40, 1));
        Path trace = dir.resolve("trace.json");
        Files.writeString(trace, "[" + String.join(",\n", events) + ", {\"ph\": \"i\", \"name\": \"mark\"}]",
                StandardCharsets.UTF_8);
        OpProfile p = OpProfile.parse(trace);
        assertEquals(Map.of("aten::reshape", 2, "aten::fill_", 1, "aten::matmul", 1), p.forwardOps());
        assertEquals(List.of("aten::reshape", "aten::fill_", "aten::matmul"), List.copyOf(p.forwardOps().keySet()));
        assertEquals(Map.of("MmBackward0", 2), p.backwardNodes());
        assertEquals(1, p.other());
        assertEquals(4, p.forwardTotal());
        assertEquals(2, p.backwardTotal());
        assertEquals("forward 4 top-level ops (aten::reshape 2); backward 2 autograd nodes (MmBackward0 2); other 1",
                p.describe(1));
    }

    @Test
    void profilesADjlForwardAndBackward(@TempDir Path dir) throws IOException {
        try (NDManager manager = NDManager.newBaseManager(ai.djl.Device.cpu())) {
            NDArray w = manager.ones(new ai.djl.ndarray.types.Shape(4, 4));
            w.setRequiresGradient(true);
            NDArray x = manager.ones(new ai.djl.ndarray.types.Shape(2, 4));
            OpProfile p = OpProfile.record(dir.resolve("djl.json"), () -> {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(x.matMul(w).tanh().sum());
                }
            });
            assertEquals(1, p.forwardOps().get("aten::matmul"), p.describe(10));
            assertEquals(1, p.forwardOps().get("aten::tanh"), p.describe(10));
            assertTrue(p.backwardNodes().containsKey("TanhBackward0"), p.describe(10));
            assertTrue(p.backwardTotal() >= 3, p.describe(10));
        }
    }
}
