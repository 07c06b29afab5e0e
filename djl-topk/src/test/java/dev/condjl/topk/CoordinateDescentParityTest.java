package dev.condjl.topk;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import org.junit.jupiter.api.Test;

import java.util.Map;

/** Spec colt5.md §2.2: forward and gradient of {@link CoordinateDescent#solve} against the PyTorch transcription. */
class CoordinateDescentParityTest {

    @Test
    void matchesReferenceForwardAndGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> tensors = Fixtures.tensors(manager, "coor_descent");
            for (JsonElement element : Fixtures.cases("coor_descent")) {
                JsonObject c = element.getAsJsonObject();
                String name = c.get("name").getAsString();
                NDArray s = tensors.get(name + ".s");
                NDArray mask = tensors.get(name + ".mask");
                NDArray k = tensors.get(name + ".k");
                s.setRequiresGradient(true);
                NDArray output;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    CoordinateDescent.Options options = options(c);
                    output = k == null
                            ? CoordinateDescent.solve(s, c.get("k").getAsDouble(), mask, options)
                            : CoordinateDescent.solve(s, k, mask, options);
                    collector.backward(output.mul(tensors.get(name + ".grad_output")).sum());
                }
                Fixtures.assertClose(tensors.get(name + ".output"), output, 1e-5, name + " output");
                Fixtures.assertGradientClose(tensors.get(name + ".grad_s"), s.getGradient(), name + " grad_s");
            }
        }
    }

    /** The reference's keyword arguments of one fixture case. */
    static CoordinateDescent.Options options(JsonObject c) {
        CoordinateDescent.Options.Builder builder =
                CoordinateDescentTest.unrolled().setIters(c.get("n_iters").getAsInt());
        if (c.has("eps")) {
            builder.optEps(c.get("eps").getAsDouble());
        }
        if (c.has("eps_init")) {
            builder.optEpsInit(c.get("eps_init").getAsDouble());
        }
        if (c.has("eps_decay")) {
            builder.optEpsDecay(c.get("eps_decay").getAsDouble());
        }
        return builder.build();
    }
}
