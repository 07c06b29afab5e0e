package dev.condjl.topk.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.BlockList;
import ai.djl.nn.Parameter;
import ai.djl.util.Pair;
import ai.djl.util.PairList;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PyTorch-style {@code state_dict} names for DJL blocks, and name-based loading of weights into them.
 *
 * <p>DJL stores a child block under {@code String.format("%02d%s", position, name)} and joins parameter names with
 * {@code _}. This class walks the block tree instead, strips the position prefix and joins with {@code .}, so a block
 * built with the reference's child names ({@code heavy_ff}, {@code 1}, {@code router}) exposes exactly the reference's
 * {@code state_dict} keys ({@code heavy_ff.1.weight}, {@code router.routing_token}). Persistent buffers such as
 * {@code rotary_emb.inv_freq} are parameters with {@code requiresGradient() == false} and appear here too.
 *
 * <p>A block implementing {@link TiedWeights} adds second keys for tied parameters; {@link #load} checks that a
 * state dict's copies under both keys are equal.
 */
public final class StateDicts {

    private StateDicts() {}

    /**
     * The outcome of {@link #load}: which keys did not line up with the block.
     *
     * @param missing block parameters absent from the state dict, in block order
     * @param unexpected state-dict keys the block has no parameter for, in map order
     * @param mismatched keys present on both sides that do not fit, as {@code name -> reason}: a different shape
     *     ({@code "block (..) vs state dict (..)"}), or a tied key whose values differ from the parameter's
     * @param tied tied keys (see {@link TiedWeights}) accepted because their values equal the parameter's, or
     *     loaded into it because the parameter's own key was absent
     * @param loaded number of parameters whose values were copied
     */
    public record LoadReport(
            List<String> missing,
            List<String> unexpected,
            Map<String, String> mismatched,
            List<String> tied,
            int loaded) {

        /** Creates a report holding unmodifiable copies of its lists. */
        public LoadReport {
            missing = List.copyOf(missing);
            unexpected = List.copyOf(unexpected);
            mismatched = Collections.unmodifiableMap(new LinkedHashMap<>(mismatched));
            tied = List.copyOf(tied);
        }

        /**
         * Whether every block parameter was loaded and no key was left over.
         *
         * @return true when nothing is missing, unexpected or mismatched
         */
        public boolean isComplete() {
            return missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty();
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return String.format(
                    Locale.ROOT,
                    "loaded %d; missing %s; unexpected %s; mismatched %s; tied %s",
                    loaded,
                    missing,
                    unexpected,
                    mismatched,
                    tied);
        }
    }

    /**
     * All parameters of {@code block} and its descendants under their PyTorch {@code state_dict} names.
     *
     * <p>Order: a block's direct parameters first, then its children depth-first in insertion order.
     *
     * @param block any DJL block
     * @return dotted name to parameter, e.g. {@code conditional_ff.heavy_ff.1.weight}
     * @throws IllegalStateException if two parameters map to the same name
     */
    public static LinkedHashMap<String, Parameter> parameters(Block block) {
        LinkedHashMap<String, Parameter> out = new LinkedHashMap<>();
        for (Pair<String, Parameter> p : named(block)) {
            if (out.put(p.getKey(), p.getValue()) != null) {
                throw new IllegalStateException("two parameters map to the state-dict name '" + p.getKey()
                        + "': two children of one block have the same name (DJL's SequentialBlock names them after"
                        + " their class; dev.condjl.colt5.Sequential names them 0, 1, ... as torch.nn.Sequential)");
            }
        }
        return out;
    }

    /**
     * Every parameter of {@code block} and its descendants with its state-dict name, in the order of
     * {@link #parameters}, without requiring the names to be unique.
     *
     * @param block any DJL block
     * @return (dotted name, parameter) pairs; a name repeats where two children of one block have the same name
     */
    public static PairList<String, Parameter> named(Block block) {
        PairList<String, Parameter> out = new PairList<>();
        walk(block, "", out, null);
        return out;
    }

    /**
     * The second keys of tied parameters in {@code block} and its descendants (see {@link TiedWeights}).
     *
     * @param block any DJL block
     * @return full tied key to the full state-dict name of the parameter it shares, e.g.
     *     {@code output_layer.weight -> token_embedding.weight}
     */
    public static LinkedHashMap<String, String> tiedKeys(Block block) {
        LinkedHashMap<String, String> out = new LinkedHashMap<>();
        walk(block, "", null, out);
        return out;
    }

    private static void walk(Block block, String prefix, PairList<String, Parameter> params, Map<String, String> tied) {
        if (params != null) {
            for (Pair<String, Parameter> p : block.getDirectParameters()) {
                params.add(prefix + p.getKey(), p.getValue());
            }
        }
        if (tied != null && block instanceof TiedWeights t) {
            t.tiedKeys().forEach((key, target) -> tied.put(prefix + key, prefix + target));
        }
        BlockList children = block.getChildren();
        for (int i = 0; i < children.size(); i++) {
            String child = childName(children.get(i).getKey(), i);
            walk(children.get(i).getValue(), prefix + child + '.', params, tied);
        }
    }

    /** Removes DJL's {@code %02d} position prefix (positions start at 1; tolerate 0-based too). */
    private static String childName(String djlName, int index) {
        for (int position : new int[] {index + 1, index}) {
            String prefix = String.format(Locale.ROOT, "%02d", position);
            if (djlName.startsWith(prefix)) {
                return djlName.substring(prefix.length());
            }
        }
        return djlName;
    }

    /**
     * Copies values from a state dict into the parameters of an initialized block, by name.
     *
     * <p>Values are copied in place (the parameter arrays keep their identity, device, dtype and
     * {@code requiresGradient}); a source of another dtype or device is converted first. Call it outside any
     * {@code GradientCollector}. With {@code strict}, nothing is copied unless every key lines up.
     *
     * <p>A tied key (see {@link TiedWeights}) is accepted when the state dict holds the same values under it as
     * under the parameter's own key, and is a mismatch when they differ; when only the tied key is present, the
     * parameter is loaded from it.
     *
     * @param block an initialized block (see {@link Block#initialize})
     * @param stateDict PyTorch-named arrays, e.g. from a safetensors file
     * @param strict whether missing, unexpected or mismatched keys are an error
     * @return what was loaded and what did not line up
     * @throws IllegalArgumentException if {@code strict} and some key did not line up; the message lists them all
     * @throws IllegalStateException if a block parameter has no array yet
     */
    public static LoadReport load(Block block, Map<String, NDArray> stateDict, boolean strict) {
        LinkedHashMap<String, Parameter> params = parameters(block);
        Map<String, NDArray> sources = new LinkedHashMap<>(stateDict);
        Map<String, String> mismatched = new LinkedHashMap<>();
        List<String> tied = new ArrayList<>();
        tiedKeys(block).forEach((key, target) -> {
            NDArray copy = sources.remove(key);
            if (copy == null) {
                return;
            }
            NDArray own = sources.get(target);
            if (own == null) {
                sources.put(target, copy);
                tied.add(key);
            } else if (sameValues(own, copy)) {
                tied.add(key);
            } else {
                mismatched.put(key, "tied to '" + target + "' (" + block.getClass().getSimpleName()
                        + " has one parameter for both keys), but the state dict holds different values under"
                        + " them (" + difference(own, copy) + "); exclude one key when reading "
                        + "(ReadOptions.optExclude) to load the other");
            }
        });
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            Parameter p = e.getValue();
            if (!p.isInitialized()) {
                throw new IllegalStateException(
                        "parameter '" + e.getKey() + "' has no array; initialize the block before loading");
            }
            NDArray src = sources.get(e.getKey());
            if (src == null) {
                missing.add(e.getKey());
                continue;
            }
            Shape expected = p.getArray().getShape();
            if (!expected.equals(src.getShape())) {
                mismatched.put(e.getKey(), "block " + expected + " vs state dict " + src.getShape());
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String key : sources.keySet()) {
            if (!params.containsKey(key)) {
                unexpected.add(key);
            }
        }
        if (strict && !(missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty())) {
            throw new IllegalArgumentException(
                    "state dict does not match the block: missing "
                            + missing
                            + ", unexpected "
                            + unexpected
                            + ", mismatched "
                            + mismatched);
        }
        int loaded = 0;
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            NDArray src = sources.get(e.getKey());
            if (src == null || mismatched.containsKey(e.getKey())) {
                continue;
            }
            copyInto(e.getValue().getArray(), src);
            loaded++;
        }
        return new LoadReport(missing, unexpected, mismatched, tied, loaded);
    }

    private static boolean sameValues(NDArray a, NDArray b) {
        return a.getShape().equals(b.getShape()) && a.getDataType() == b.getDataType() && a.contentEquals(b);
    }

    private static String difference(NDArray a, NDArray b) {
        if (!a.getShape().equals(b.getShape())) {
            return "shapes " + a.getShape() + " and " + b.getShape();
        }
        if (a.getDataType() != b.getDataType()) {
            return "dtypes " + a.getDataType() + " and " + b.getDataType();
        }
        try (NDManager scratch = a.getManager().newSubManager()) {
            NDArray x = a.duplicate();
            x.attach(scratch);
            NDArray y = b.duplicate();
            y.attach(scratch);
            NDArray diff = x.toType(DataType.FLOAT64, false)
                    .sub(y.toDevice(x.getDevice(), false).toType(DataType.FLOAT64, false)).abs();
            return String.format(Locale.ROOT, "max |difference| %.3g", diff.max().getDouble());
        }
    }

    private static void copyInto(NDArray dst, NDArray src) {
        NDArray typed = src.getDataType() == dst.getDataType() ? src : src.toType(dst.getDataType(), false);
        NDArray placed = typed.getDevice().equals(dst.getDevice()) ? typed : typed.toDevice(dst.getDevice(), false);
        dst.set(new NDIndex("..."), placed);
        if (placed != typed) {
            placed.close();
        }
        if (typed != src) {
            typed.close();
        }
    }
}
