package dev.condjl.colt5;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.function.Function;

/**
 * Arrays that depend only on sizes, values, device and dtype (scalar constants, local attention's window bias),
 * built on first use and then shared by every call: a lookup instead of the native calls that build them, which on
 * a GPU cost more than the arithmetic of a small block.
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
final class ConstantCache implements AutoCloseable {

    /** The cache of the CoLT5 blocks: 256 arrays and 2^24 elements (64 MiB of float32) per device. */
    static final ConstantCache SHARED = new ConstantCache(256, 1L << 24);

    private final int maxEntries;
    private final long maxElements;
    private final ConcurrentMap<Device, PerDevice> devices = new ConcurrentHashMap<>();

    /**
     * Creates an empty cache.
     *
     * @param maxEntries arrays per device, {@code >= 0}
     * @param maxElements elements per device in all, {@code >= 0}
     */
    ConstantCache(int maxEntries, long maxElements) {
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
    NDArray get(NDArray like, Object key, Function<NDManager, NDArray> build) {
        Device device = like.getDevice();
        PerDevice entries = devices.computeIfAbsent(device,
                d -> new PerDevice(like.getManager().getEngine().newBaseManager(d)));
        return entries.get(key, build, like.getManager());
    }

    /**
     * Arrays cached for a device.
     *
     * @param device the device
     * @return how many arrays it holds
     */
    int size(Device device) {
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

        synchronized int size() {
            return arrays.size();
        }

        synchronized void close() {
            manager.close();
            arrays.clear();
        }
    }
}
