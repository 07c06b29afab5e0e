package dev.condjl.topk.checkpoint;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import net.razorvine.pickle.IObjectConstructor;
import net.razorvine.pickle.Opcodes;
import net.razorvine.pickle.PickleException;
import net.razorvine.pickle.Unpickler;

/**
 * Unpickles the {@code data.pkl} of a {@code torch.save} zip into plain Java values, allowing only what a state
 * dict needs, in the spirit of PyTorch's own {@code weights_only} unpickler.
 *
 * <p>Allowed globals: {@code collections.OrderedDict}, {@code torch._utils._rebuild_tensor(_v2)}, {@code
 * torch._utils._rebuild_parameter(_with_state)}, the typed storage classes ({@code torch.FloatStorage}, ...),
 * {@code torch.Size} and {@code torch.device}. Any other global ({@code os.system}, {@code builtins.eval}, ...) is
 * refused with a {@link PickleException} naming it, before anything is constructed. Opcodes are limited to those
 * {@code torch.save} writes (protocols 2 to 5 without out-of-band buffers); length-prefixed strings are checked
 * against the bytes left; dict keys must be strings, numbers, booleans or None, so no container is ever hashed.
 * Tensors come out as {@link PickledTensor} (metadata only), storages as {@link StorageRef}; no tensor data is read
 * here. The razorvine machinery is iterative, so nesting depth cannot exhaust the Java stack.
 */
final class StateDictUnpickler extends Unpickler {

    private static final int MAX_GLOBAL_NAME = 256;
    private static final Pattern STORAGE_KEY = Pattern.compile("[0-9A-Za-z_]{1,64}");

    /** Opcodes passed to razorvine's own implementation as they are. */
    private static final Set<Short> PLAIN_OPCODES = Set.of(
            Opcodes.MARK, Opcodes.STOP, Opcodes.BININT, Opcodes.BININT1, Opcodes.BININT2, Opcodes.NONE,
            Opcodes.BINPERSID, Opcodes.REDUCE, Opcodes.APPEND, Opcodes.BINGET, Opcodes.LONG_BINGET,
            Opcodes.EMPTY_LIST, Opcodes.BINPUT, Opcodes.LONG_BINPUT, Opcodes.TUPLE, Opcodes.EMPTY_TUPLE,
            Opcodes.BINFLOAT, Opcodes.PROTO, Opcodes.NEWOBJ, Opcodes.TUPLE1, Opcodes.TUPLE2, Opcodes.TUPLE3,
            Opcodes.NEWTRUE, Opcodes.NEWFALSE, Opcodes.LONG1, Opcodes.SHORT_BINUNICODE, Opcodes.MEMOIZE,
            Opcodes.FRAME);

    private static final Map<String, IObjectConstructor> GLOBALS = Map.of(
            "collections.OrderedDict", StateDictUnpickler::orderedDict,
            "torch._utils._rebuild_tensor_v2", args -> rebuildTensor(args, 6, 7),
            "torch._utils._rebuild_tensor", args -> rebuildTensor(args, 4, 4),
            "torch._utils._rebuild_parameter", args -> rebuildParameter(args, 3),
            "torch._utils._rebuild_parameter_with_state", args -> rebuildParameter(args, 4),
            "torch.Size", StateDictUnpickler::torchSize,
            "torch.device", StateDictUnpickler::torchDevice);

    private final Map<String, StorageRef> storages = new HashMap<>();
    private PickleInput in;

    /** A storage named by a persistent id {@code ('storage', torch.XStorage, key, location, numel)}. */
    record StorageRef(String key, CheckpointDType dtype, long numel) {}

    /**
     * The arguments of a tensor rebuild call, unchecked: {@code offset} should be an integer, {@code size} and
     * {@code stride} tuples of integers. Readers check them with the state-dict key at hand.
     */
    record PickledTensor(StorageRef storage, Object offset, Object size, Object stride) {}

    /**
     * Unpickles one pickle that must fill {@code data} exactly.
     *
     * @param data the pickle bytes
     * @return the root object: maps, lists, {@code Object[]} tuples, strings, numbers, booleans, null, {@link
     *     PickledTensor}
     * @throws PickleException if the pickle is malformed or uses something not allowed
     * @throws IOException if the pickle ends early
     */
    Object unpickle(byte[] data) throws IOException {
        in = new PickleInput(data);
        Object root = load(in);
        if (in.available() > 0) {
            throw new PickleException(in.available() + " bytes follow the STOP opcode");
        }
        return root;
    }

    /** {@inheritDoc} */
    @Override
    protected Object dispatch(short opcode) throws IOException {
        switch (opcode) {
            case Opcodes.GLOBAL:
                stack.add(resolve(in.readLine(), in.readLine()));
                return NO_RETURN_VALUE;
            case Opcodes.STACK_GLOBAL:
                Object name = stack.pop();
                Object module = stack.pop();
                if (!(module instanceof String) || !(name instanceof String)) {
                    throw new PickleException("STACK_GLOBAL needs two strings on the stack");
                }
                stack.add(resolve((String) module, (String) name));
                return NO_RETURN_VALUE;
            case Opcodes.EMPTY_DICT:
                stack.add(new LinkedHashMap<>());
                return NO_RETURN_VALUE;
            case Opcodes.SETITEM:
                Object value = stack.pop();
                Object key = stack.pop();
                asDict(stack.peek()).put(checkKey(key), value);
                return NO_RETURN_VALUE;
            case Opcodes.SETITEMS:
                setItems(stack.pop_all_since_marker());
                return NO_RETURN_VALUE;
            case Opcodes.APPENDS:
                // razorvine trims the list on every APPENDS, which is quadratic for a hostile pickle
                List<Object> items = stack.pop_all_since_marker();
                asList(stack.peek()).addAll(items);
                return NO_RETURN_VALUE;
            case Opcodes.BUILD:
                // torch.save only sets the _metadata attribute of an OrderedDict this way; it carries no weights
                Object state = stack.pop();
                if (!(stack.peek() instanceof Map) || !(state == null || state instanceof Map)) {
                    throw new PickleException("BUILD is only allowed to set the state of a dict");
                }
                return NO_RETURN_VALUE;
            case Opcodes.BINUNICODE:
                in.checkLength(4);
                return super.dispatch(opcode);
            case Opcodes.BINUNICODE8:
                in.checkLength(8);
                return super.dispatch(opcode);
            default:
                if (!PLAIN_OPCODES.contains(opcode)) {
                    throw new PickleException(String.format("pickle opcode 0x%02x is not allowed in a state dict", opcode));
                }
                return super.dispatch(opcode);
        }
    }

    /** {@inheritDoc} */
    @Override
    protected Object persistentLoad(Object pid) {
        if (!(pid instanceof Object[]) || ((Object[]) pid).length != 5 || !"storage".equals(((Object[]) pid)[0])) {
            throw new PickleException("persistent id is not ('storage', type, key, location, numel)");
        }
        Object[] id = (Object[]) pid;
        if (!(id[1] instanceof CheckpointDType)) {
            throw new PickleException("persistent id does not name a storage class");
        }
        if (!(id[2] instanceof String) || !STORAGE_KEY.matcher((String) id[2]).matches()) {
            throw new PickleException("storage key must be 1 to 64 letters, digits or '_'");
        }
        String key = (String) id[2];
        long numel = toLong(id[4], "storage size");
        if (numel < 0) {
            throw new PickleException("storage '" + key + "' has negative size " + numel);
        }
        StorageRef ref = new StorageRef(key, (CheckpointDType) id[1], numel);
        StorageRef known = storages.putIfAbsent(key, ref);
        if (known != null && !known.equals(ref)) {
            throw new PickleException("storage '" + key + "' is declared twice with different types or sizes");
        }
        return known == null ? ref : known;
    }

    /**
     * Converts a pickled integer to {@code long}.
     *
     * @throws PickleException if it is not an integer or does not fit
     */
    static long toLong(Object value, String what) {
        if (value instanceof Integer || value instanceof Long) {
            return ((Number) value).longValue();
        }
        if (value instanceof BigInteger) {
            throw new PickleException(what + " does not fit in 64 bits");
        }
        throw new PickleException(what + " is of type " + describe(value) + ", not an integer");
    }

    /** A short Python-style type name, never the value (which may be huge or self-referencing). */
    static String describe(Object value) {
        if (value == null) {
            return "None";
        } else if (value instanceof Map) {
            return "dict";
        } else if (value instanceof List) {
            return "list";
        } else if (value instanceof Object[]) {
            return "tuple";
        } else if (value instanceof String) {
            return "str";
        } else if (value instanceof PickledTensor) {
            return "tensor";
        } else if (value instanceof Number) {
            return value instanceof Double ? "float" : "int";
        } else if (value instanceof Boolean) {
            return "bool";
        }
        return value.getClass().getSimpleName();
    }

    private static Object resolve(String module, String name) {
        String global = module + "." + name;
        if ("torch".equals(module) && name.endsWith("Storage")) {
            Optional<CheckpointDType> dtype = CheckpointDType.fromStorageClass(name);
            if (dtype.isPresent()) {
                return dtype.get();
            }
        }
        IObjectConstructor constructor = GLOBALS.get(global);
        if (constructor == null) {
            throw new PickleException("global " + CheckpointException.quote(global)
                    + " is not allowed in a state dict (allowed: tensor and parameter rebuilders, typed storages,"
                    + " OrderedDict, torch.Size, torch.device)");
        }
        return constructor;
    }

    private static Object orderedDict(Object[] args) {
        if (args.length != 0) {
            throw new PickleException("OrderedDict takes no arguments here");
        }
        return new LinkedHashMap<>();
    }

    private static Object rebuildTensor(Object[] args, int minArgs, int maxArgs) {
        if (args.length < minArgs || args.length > maxArgs || !(args[0] instanceof StorageRef)) {
            throw new PickleException("tensor rebuild needs a storage and " + (minArgs - 1) + " more arguments");
        }
        return new PickledTensor((StorageRef) args[0], args[1], args[2], args[3]);
    }

    private static Object rebuildParameter(Object[] args, int count) {
        if (args.length != count || !(args[0] instanceof PickledTensor)) {
            throw new PickleException("parameter rebuild needs a tensor and " + (count - 1) + " more arguments");
        }
        return args[0];
    }

    private static Object torchSize(Object[] args) {
        if (args.length != 1 || !(args[0] instanceof Object[])) {
            throw new PickleException("torch.Size takes one tuple");
        }
        return args[0];
    }

    private static Object torchDevice(Object[] args) {
        if (args.length < 1 || args.length > 2 || !(args[0] instanceof String)) {
            throw new PickleException("torch.device takes a type name and an optional index");
        }
        return args.length == 1 ? args[0] : args[0] + ":" + args[1];
    }

    private void setItems(List<Object> items) {
        if (items.size() % 2 != 0) {
            throw new PickleException("SETITEMS with an odd number of items");
        }
        Map<Object, Object> dict = asDict(stack.peek());
        for (int i = 0; i < items.size(); i += 2) {
            dict.put(checkKey(items.get(i)), items.get(i + 1));
        }
    }

    private static Object checkKey(Object key) {
        if (key == null || key instanceof String || key instanceof Number || key instanceof Boolean) {
            return key;
        }
        throw new PickleException("dict key of type " + describe(key) + " is not allowed");
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> asDict(Object target) {
        if (!(target instanceof Map)) {
            throw new PickleException("SETITEM on a " + describe(target) + ", not a dict");
        }
        return (Map<Object, Object>) target;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> asList(Object target) {
        if (!(target instanceof ArrayList)) {
            throw new PickleException("APPENDS on a " + describe(target) + ", not a list");
        }
        return (List<Object>) target;
    }

    /** The pickle bytes, with the look-ahead checks razorvine does not make. */
    private static final class PickleInput extends ByteArrayInputStream {

        PickleInput(byte[] data) {
            super(data);
        }

        /** Reads a GLOBAL line (module or name) of at most {@value #MAX_GLOBAL_NAME} bytes. */
        String readLine() {
            int start = pos;
            while (pos < count && buf[pos] != '\n') {
                if (pos - start >= MAX_GLOBAL_NAME) {
                    throw new PickleException("GLOBAL name longer than " + MAX_GLOBAL_NAME + " bytes");
                }
                pos++;
            }
            if (pos >= count) {
                throw new PickleException("pickle ends inside a GLOBAL name");
            }
            String line = new String(buf, start, pos - start, StandardCharsets.UTF_8);
            pos++;
            return line;
        }

        /** Checks that the little-endian length prefix at the read position fits in the bytes after it. */
        void checkLength(int prefixBytes) {
            if (count - pos < prefixBytes) {
                throw new PickleException("pickle ends inside a length prefix");
            }
            long length = 0;
            for (int i = prefixBytes - 1; i >= 0; i--) {
                length = (length << 8) | (buf[pos + i] & 0xff);
            }
            if (prefixBytes == 4) {
                length = (int) length;
            }
            if (length < 0 || length > count - pos - prefixBytes) {
                throw new PickleException(
                        "string of " + length + " bytes declared with " + (count - pos - prefixBytes) + " bytes left");
            }
        }
    }
}
