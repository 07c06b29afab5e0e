package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import dev.condjl.topk.TieBreak;
import dev.condjl.topk.checkpoint.StateDicts;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Golden fixtures of the routed autoregressive and image attention, the routed ViT and the coordinate-descent
 * attention family ({@code src/test/resources/routed_models/*.safetensors}, made by {@code gen_fixtures.py} beside
 * them): state-dict entries under their reference names, inputs and outputs under names starting with {@code @}.
 */
public final class RoutedModelFixtures {

    /** The parity bound of these fixtures: max abs difference. */
    public static final double TOLERANCE = 1e-4;

    private static final Logger LOG = LogManager.getLogger(RoutedModelFixtures.class);

    private final NDList arrays;

    private RoutedModelFixtures(NDList arrays) {
        this.arrays = arrays;
    }

    /**
     * The options the routing-exactness fixtures ({@code *_few_*.safetensors}, issue 14) share: width 16, light
     * attention 2×8 in windows of 4, heavy attention 2×8, the router's defaults but for the tie break.
     *
     * @param builder an image or autoregressive attention builder
     * @param tieBreak the routers' tie break
     * @param <T> the builder type
     * @return the builder, for its module's own options
     */
    public static <T extends RoutedAttentionBuilder<T>> T fewTokenRouting(T builder, TieBreak tieBreak) {
        return builder.setDim(16).optLightDimHead(8).optLightHeads(2).optLightWindowSize(4).optHeavyDimHead(8)
                .optHeavyHeads(2).optRouterKwargs(CoordinateDescentRouter.builder().optTieBreak(tieBreak));
    }

    /**
     * Reads one fixture file.
     *
     * @param manager owner of the arrays
     * @param name file name under {@code routed_models/}
     * @return the fixture
     */
    public static RoutedModelFixtures read(NDManager manager, String name) {
        try (InputStream in = RoutedModelFixtures.class.getResourceAsStream("/routed_models/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing fixture routed_models/" + name);
            }
            return new RoutedModelFixtures(NDList.decode(manager, in));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Returns an input or output.
     *
     * @param name its name without the {@code @}
     * @return the array
     */
    public NDArray get(String name) {
        NDArray a = arrays.get("@" + name);
        if (a == null) {
            throw new IllegalStateException("fixture has no @" + name);
        }
        return a;
    }

    /**
     * Returns the state-dict entries.
     *
     * @return reference name to array
     */
    public Map<String, NDArray> stateDict() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (NDArray a : arrays) {
            if (!a.getName().startsWith("@")) {
                out.put(a.getName(), a);
            }
        }
        return out;
    }

    /**
     * Loads the state dict into an initialized block, requiring every key to line up.
     *
     * @param block the block
     */
    public void load(Block block) {
        StateDicts.LoadReport report = StateDicts.load(block, stateDict(), true);
        assertTrue(report.isComplete(), report.toString());
    }

    /**
     * Asserts shape equality and a max abs difference within {@link #TOLERANCE}, and logs the difference.
     *
     * @param what label for the log and the failure message
     * @param expected the reference values
     * @param actual our values
     * @return the max abs difference
     */
    public static double assertClose(String what, NDArray expected, NDArray actual) {
        assertEquals(expected.getShape(), actual.getShape(), what + ": shape");
        double diff = maxAbsDiff(expected, actual);
        LOG.info(String.format(Locale.ROOT, "parity %s: max abs diff %.3g", what, diff));
        assertTrue(diff <= TOLERANCE, what + ": max abs diff " + diff + " > " + TOLERANCE);
        return diff;
    }

    /**
     * The largest absolute element difference; NaN anywhere gives NaN.
     *
     * @param a first array
     * @param b second array, same shape
     * @return max |a − b|
     */
    public static double maxAbsDiff(NDArray a, NDArray b) {
        NDArray d = a.toType(DataType.FLOAT64, false).sub(b.toType(DataType.FLOAT64, false)).abs();
        if (d.isNaN().any().getBoolean()) {
            return Double.NaN;
        }
        return d.size() == 0 ? 0 : d.max().getDouble();
    }
}
