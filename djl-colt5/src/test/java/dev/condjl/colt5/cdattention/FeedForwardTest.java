package dev.condjl.colt5.cdattention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.colt5.RoutedModelFixtures;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Coordinate-descent-attention {@code FeedForward} (spec colt5.md §7.2), whose reference raises a NameError. */
class FeedForwardTest {

    @Test
    void coordinateDescentActivationMatchesFixture() {
        try (NDManager manager = NDManager.newBaseManager()) {
            RoutedModelFixtures fx = RoutedModelFixtures.read(manager, "cd_feedforward.safetensors");
            NDArray x = fx.get("x");
            FeedForward ff = FeedForward.builder().setDim(16).optUseCoorDescent(true).optCoorDescentIters(15).build();
            assertEquals(6.0, ff.getSparsityK(), "default k = hidden // 10 = 64 // 10");
            ff.initialize(manager, DataType.FLOAT32, x.getShape());
            fx.load(ff);
            assertEquals(
                    List.of("proj_in.0.weight", "proj_in.0.bias", "proj_in.1.weight", "proj_in.1.bias",
                            "proj_out.weight", "proj_out.bias"),
                    List.copyOf(StateDicts.parameters(ff).keySet()));
            NDArray y = ff.forward(new ParameterStore(manager, false), new NDList(x), false).head();
            RoutedModelFixtures.assertClose("cd_feedforward", fx.get("y"), y);
        }
    }

    @Test
    void geluModeIsAPlainMlp() {
        try (NDManager manager = NDManager.newBaseManager()) {
            FeedForward ff = FeedForward.builder().setDim(4).optMult(2).build();
            NDArray x = manager.randomNormal(new Shape(3, 4));
            ff.initialize(manager, DataType.FLOAT32, x.getShape());
            NDArray y = ff.forward(new ParameterStore(manager, false), new NDList(x), false).head();
            assertEquals(new Shape(3, 4), y.getShape());
            assertEquals(new Shape(8, 4), StateDicts.parameters(ff).get("proj_in.1.weight").getArray().getShape());
        }
    }

    @Test
    void rejectsAZeroDefaultSparsity() {
        // hidden 8 → default k = 8 // 10 = 0
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FeedForward.builder().setDim(4).optMult(2).optUseCoorDescent(true).build());
        assertTrue(e.getMessage().contains("hidden size 8"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FeedForward.builder().setDim(4).optMult(0).build());
    }
}
