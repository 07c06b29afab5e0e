package dev.condjl.topk.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.BlockList;
import ai.djl.nn.Parameter;
import ai.djl.util.Pair;
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
 */
public final class StateDicts {

    private StateDicts() {}

    /**
     * The outcome of {@link #load}: which keys did not line up with the block.
     *
     * @param missing block parameters absent from the state dict, in block order
     * @param unexpected state-dict keys the block has no parameter for, in map order
     * @param mismatched parameters present on both sides with different shapes, as {@code name -> "block (..) vs
     *     state dict (..)"}
     * @param loaded number of parameters whose values were copied
     */
    public record LoadReport(
            List<String> missing, List<String> unexpected, Map<String, String> mismatched, int loaded) {

        /** Creates a report holding unmodifiable copies of its lists. */
        public LoadReport {
            missing = List.copyOf(missing);
            unexpected = List.copyOf(unexpected);
            mismatched = Collections.unmodifiableMap(new LinkedHashMap<>(mismatched));
        }

        /**
         * Whether every block parameter was loaded and no key was left over.
         *
         * @return true when nothing is missing, unexpected or mis-shaped
         */
        public boolean isComplete() {
            return missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty();
        }

        /** {@inheritDoc} */
        @Override
        public String toString() {
            return String.format(
                    Locale.ROOT,
                    "loaded %d; missing %s; unexpected %s; mis-shaped %s",
                    loaded,
                    missing,
                    unexpected,
                    mismatched);
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
        collect(block, "", out);
        return out;
    }

    private static void collect(Block block, String prefix, Map<String, Parameter> out) {
        for (Pair<String, Parameter> p : block.getDirectParameters()) {
            put(out, prefix + p.getKey(), p.getValue());
        }
        BlockList children = block.getChildren();
        for (int i = 0; i < children.size(); i++) {
            String child = childName(children.get(i).getKey(), i);
            collect(children.get(i).getValue(), prefix + child + '.', out);
        }
    }

    private static void put(Map<String, Parameter> out, String name, Parameter parameter) {
        if (out.put(name, parameter) != null) {
            throw new IllegalStateException("two parameters map to the state-dict name '" + name + "'");
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
     * @param block an initialized block (see {@link Block#initialize})
     * @param stateDict PyTorch-named arrays, e.g. from a safetensors file
     * @param strict whether missing, unexpected or mis-shaped keys are an error
     * @return what was loaded and what did not line up
     * @throws IllegalArgumentException if {@code strict} and some key did not line up; the message lists them all
     * @throws IllegalStateException if a block parameter has no array yet
     */
    public static LoadReport load(Block block, Map<String, NDArray> stateDict, boolean strict) {
        LinkedHashMap<String, Parameter> params = parameters(block);
        List<String> missing = new ArrayList<>();
        List<String> unexpected = new ArrayList<>();
        Map<String, String> mismatched = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            Parameter p = e.getValue();
            if (!p.isInitialized()) {
                throw new IllegalStateException(
                        "parameter '" + e.getKey() + "' has no array; initialize the block before loading");
            }
            NDArray src = stateDict.get(e.getKey());
            if (src == null) {
                missing.add(e.getKey());
                continue;
            }
            Shape expected = p.getArray().getShape();
            if (!expected.equals(src.getShape())) {
                mismatched.put(e.getKey(), "block " + expected + " vs state dict " + src.getShape());
            }
        }
        for (String key : stateDict.keySet()) {
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
                            + ", mis-shaped "
                            + mismatched);
        }
        int loaded = 0;
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            NDArray src = stateDict.get(e.getKey());
            if (src == null || mismatched.containsKey(e.getKey())) {
                continue;
            }
            copyInto(e.getValue().getArray(), src);
            loaded++;
        }
        return new LoadReport(missing, unexpected, mismatched, loaded);
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
