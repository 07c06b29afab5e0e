package dev.condjl.topk;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.function.Function;

/**
 * Arrays that depend only on sizes, values, device and dtype (scalar constants, the soft top-k's {@code ln k}, local
 * attention's window bias), built on first use and then shared by every call: a lookup instead of the native calls
 * that build them, which on a GPU cost more than the arithmetic of a small block. For condjl's modules; not part of
 * their user-facing API.
 *
 * <p>Entries carry no gradient and live in one manager per device that outlives every forward call, kept out of any
 * open {@link NDScope}. Callers must neither modify a cached array in place nor keep the result of an op whose
 * first operand it is (that result would belong to the cache's manager, and pile up there).
 *
 * <p>Bounded: a device holds at most {@code maxEntries} arrays of at most {@code maxElements} elements in all. Once
 * full, other keys are built in the caller's manager on every call, as if uncached. Nothing is ever evicted, so an
 * array handed out stays valid however other threads use the cache. Thread-safe; lookups of one device are
 * serialised (DJL's multi-device trainer runs a thread per device, each with its own entries).
 */
public final class ConstantCache implements AutoCloseable {

    /** The cache of the soft top-k and the CoLT5 blocks: 256 arrays, 2^24 elements (64 MiB of float32) per device. */
    public static final ConstantCache SHARED = new ConstantCache(256, 1L << 24);

    private final int maxEntries;
    private final long maxElements;
    private final ConcurrentMap<Device, PerDevice> devices = new ConcurrentHashMap<>();

    /**
     * Creates an empty cache.
     *
     * @param maxEntries arrays per device, {@code >= 0}
     * @param maxElements elements per device in all, {@code >= 0}
     */
    public ConstantCache(int maxEntries, long maxElements) {
        this.maxEntries = maxEntries;
        this.maxElements = maxElements;
    }

    /**
     * The cached array for {@code key} on {@code like}'s device, built by {@code build} on first use.
     *
     * @param like an array of this call: its device selects the entry, its manager receives the array (and the
     *     builder's temporaries) when the cache is full
     * @param key what, besides the device, the array depends on (a record: equals and hashCode by value)
     * @param build makes the array on {@code like}'s device from the given manager; must not read anything
     *     that is not in {@code key}
     * @return the array; never to be modified or used as the first operand of a kept result
     */
    public NDArray get(NDArray like, Object key, Function<NDManager, NDArray> build) {
        Device device = like.getDevice();
        PerDevice entries = devices.computeIfAbsent(device,
                d -> new PerDevice(like.getManager().getEngine().newBaseManager(d)));
        return entries.get(key, build, like.getManager());
    }

    /**
     * A 0-dim constant on {@code like}'s device, for arithmetic with this call's arrays: one lookup where a native
     * {@code full} would be a call. It is a native tensor, reference-counted by libtorch, so autograd may keep it for
     * backward (DJL's {@code mul(Number)} and the like wrap the number in a Java buffer that they free at once).
     *
     * @param like an array of this call (its device is used)
     * @param value the constant (for int64, {@code |value| < 2^24})
     * @param type its dtype
     * @return a shared 0-dim array; never to be modified or used as the first operand of a kept result
     */
    public NDArray scalar(NDArray like, float value, DataType type) {
        return get(like, new Scalar(value, type), m -> m.full(new Shape(), value, type, m.getDevice()));
    }

    private record Scalar(float value, DataType type) {}

    /**
     * Arrays held for a device: the cached ones, and results wrongly derived from them as first operand (reading a
     * cached GPU array's values counts too: the host copy lands in the array's manager).
     *
     * @param device the device
     * @return how many arrays its manager holds
     */
    public int size(Device device) {
        PerDevice entries = devices.get(device);
        return entries == null ? 0 : entries.size();
    }

    /** Frees every cached array; for caches other than {@link #SHARED} (tests), once no caller uses them. */
    @Override
    public void close() {
        devices.values().forEach(PerDevice::close);
        devices.clear();
    }

    private final class PerDevice {
        private final NDManager manager;
        private final Map<Object, NDArray> arrays = new HashMap<>();
        private long elements;

        PerDevice(NDManager manager) {
            this.manager = manager;
        }

        synchronized NDArray get(Object key, Function<NDManager, NDArray> build, NDManager caller) {
            NDArray cached = arrays.get(key);
            if (cached != null) {
                return cached;
            }
            if (arrays.size() >= maxEntries) {
                return build.apply(caller);
            }
            NDArray array;
            try (NDManager scratch = manager.newSubManager()) {
                array = build.apply(scratch);
                if (elements + array.size() > maxElements) {
                    array.attach(caller);
                    return array;
                }
                array.attach(manager);
            }
            // an NDScope open around the call would close it when the scope ends
            NDScope.unregister(array);
            arrays.put(key, array);
            elements += array.size();
            return array;
        }

        int size() {
            return manager.getManagedArrays().size();
        }

        synchronized void close() {
            manager.close();
            arrays.clear();
        }
    }
}
