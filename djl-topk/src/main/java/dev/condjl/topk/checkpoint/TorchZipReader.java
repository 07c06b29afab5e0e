package dev.condjl.topk.checkpoint;

import dev.condjl.topk.checkpoint.StateDictUnpickler.PickledTensor;
import dev.condjl.topk.checkpoint.StateDictUnpickler.StorageRef;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import net.razorvine.pickle.PickleException;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Reads the zip format of {@code torch.save} (torch 1.6 and later).
 *
 * <p>Layout: every entry lies under one folder {@code <name>/}; {@code data.pkl} is the pickled object, {@code
 * data/<key>} the raw bytes of each storage, {@code byteorder} (optional) {@code little} or {@code big}. Before any
 * tensor data is read, the reader checks: entry count, entry names (no {@code ..}, absolute paths, backslashes or
 * duplicates), every entry's declared size against the file size and the compression ratio (zip bombs, overlapping
 * entries), the pickle (see {@link StateDictUnpickler}), each storage entry's size against its declared element
 * count, and each tensor's shape, strides and offset against its storage. While reading, every entry must yield
 * exactly its declared size and CRC-32.
 */
final class TorchZipReader extends CheckpointReader {

    private static final Logger LOG = LogManager.getLogger(TorchZipReader.class);

    /** torch.save stores entries uncompressed; a deflated entry growing more than this is refused as a zip bomb. */
    private static final long MAX_INFLATE_RATIO = 100;

    private static final int MAX_NAME_LENGTH = 256;
    private static final Pattern ENTRY_NAME = Pattern.compile("[A-Za-z0-9_.\\-]+(/[A-Za-z0-9_.\\-]+)*");
    private static final int COPY_BUFFER = 1 << 16;

    private final ZipFile zip;
    private final Map<String, ZipEntry> entries = new HashMap<>();
    private String folder;
    private ByteOrder order = ByteOrder.LITTLE_ENDIAN;

    TorchZipReader(Path file, ReadOptions options) throws CheckpointException {
        super(file, options);
        try {
            zip = new ZipFile(file.toFile(), ZipFile.OPEN_READ, StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            throw fail(null, null, "not a readable zip archive: " + e.getMessage(), e);
        }
    }

    /** {@inheritDoc} */
    @Override
    void parse() throws IOException {
        checkEntries(Files.size(file));
        String pickleEntry = folder + "/data.pkl";
        if (isTorchScript()) {
            throw fail(null, null, "a TorchScript archive (torch.jit.save), not a state dict; save its weights"
                    + " with torch.save(torch.jit.load(path).state_dict(), new_path)");
        }
        if (!entries.containsKey(pickleEntry)) {
            throw fail(null, null, "no " + pickleEntry + ": not a torch.save archive");
        }
        readByteOrder();
        Object root = unpickle(pickleEntry);
        selectTensors(root);
    }

    /** {@inheritDoc} */
    @Override
    CheckpointFormat format() {
        return CheckpointFormat.PYTORCH_ZIP;
    }

    /** {@inheritDoc} */
    @Override
    ByteBuffer elements(StoredTensor tensor) throws CheckpointException {
        ZipEntry entry = entries.get(tensor.storage());
        long start = tensor.offset() * tensor.dtype().byteSize();
        return ByteBuffer.wrap(read(entry, start, (int) tensor.spanBytes(), tensor.key())).order(order);
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        try {
            zip.close();
        } catch (IOException e) {
            LOG.debug("closing {}", file, e);
        }
    }

    private void checkEntries(long fileSize) throws CheckpointException {
        if (zip.size() > options.maxEntries()) {
            throw fail(null, null, "archive holds " + zip.size() + " entries, more than maxEntries ("
                    + options.maxEntries() + ")");
        }
        long totalSize = 0;
        long totalCompressed = 0;
        for (Enumeration<? extends ZipEntry> it = zip.entries(); it.hasMoreElements(); ) {
            ZipEntry entry = it.nextElement();
            String name = entry.getName();
            checkName(name);
            if (entries.put(name, entry) != null) {
                throw fail(name, null, "entry appears twice");
            }
            long size = entry.getSize();
            long compressed = entry.getCompressedSize();
            if (size < 0 || compressed < 0 || compressed > fileSize) {
                throw fail(name, null, "declared sizes " + size + "/" + compressed + " do not fit a file of "
                        + fileSize + " bytes");
            }
            if (entry.getMethod() == ZipEntry.STORED ? size != compressed
                    : size > MAX_INFLATE_RATIO * Math.max(compressed, 1)) {
                throw fail(name, null, "declares " + size + " bytes from " + compressed
                        + " compressed bytes (stored entries must match; deflated ones may grow at most "
                        + MAX_INFLATE_RATIO + "x: zip bomb?)");
            }
            totalSize += size;
            totalCompressed += compressed;
            if (totalSize > options.maxTotalBytes() || totalCompressed > fileSize) {
                throw fail(name, null, "entries declare " + totalSize + " bytes (" + totalCompressed
                        + " compressed) in total, more than maxTotalBytes (" + options.maxTotalBytes()
                        + ") or the file size (" + fileSize + "): zip bomb or overlapping entries?");
            }
        }
        if (folder == null) {
            throw fail(null, null, "archive is empty");
        }
    }

    private void checkName(String name) throws CheckpointException {
        if (name.length() > MAX_NAME_LENGTH || !ENTRY_NAME.matcher(name).matches()
                || ("/" + name + "/").contains("/../") || ("/" + name + "/").contains("/./")) {
            throw fail(name, null, "unsafe entry name (allowed: relative paths of letters, digits, '_', '.', '-')");
        }
        int slash = name.indexOf('/');
        String top = slash < 0 ? "" : name.substring(0, slash);
        if (folder == null) {
            folder = top;
        }
        if (top.isEmpty() || !top.equals(folder)) {
            throw fail(name, null, "entry is outside the archive folder " + CheckpointException.quote(folder));
        }
    }

    private boolean isTorchScript() {
        return entries.containsKey(folder + "/constants.pkl")
                || entries.keySet().stream().anyMatch(n -> n.startsWith(folder + "/code/"));
    }

    private void readByteOrder() throws CheckpointException {
        ZipEntry entry = entries.get(folder + "/byteorder");
        if (entry == null) {
            return;
        }
        if (entry.getSize() > 16) {
            throw fail(entry.getName(), null, "byteorder entry of " + entry.getSize() + " bytes");
        }
        String value = new String(read(entry, 0, (int) entry.getSize(), null), StandardCharsets.US_ASCII).trim();
        if ("big".equals(value)) {
            order = ByteOrder.BIG_ENDIAN;
        } else if (!"little".equals(value)) {
            throw fail(entry.getName(), null, "byte order must be 'little' or 'big'");
        }
    }

    private Object unpickle(String name) throws CheckpointException {
        ZipEntry entry = entries.get(name);
        if (entry.getSize() > Math.min(options.maxPickleBytes(), StoredTensor.MAX_BUFFER_BYTES)) {
            throw fail(name, null, "pickle of " + entry.getSize() + " bytes is larger than maxPickleBytes ("
                    + options.maxPickleBytes() + ")");
        }
        byte[] data = read(entry, 0, (int) entry.getSize(), null);
        try {
            return new StateDictUnpickler().unpickle(data);
        } catch (IOException | RuntimeException | StackOverflowError e) {
            throw fail(name, null, "pickle refused: " + e.getMessage(), e);
        }
    }

    private void selectTensors(Object root) throws CheckpointException {
        String pickle = folder + "/data.pkl";
        if (!(root instanceof Map)) {
            throw fail(pickle, null, "value of type " + StateDictUnpickler.describe(root) + " is not a dict of tensors");
        }
        Map<?, ?> top = (Map<?, ?>) root;
        String fromKey = options.key();
        Map<?, ?> dict;
        if (fromKey != null) {
            Object nested = top.get(fromKey);
            if (!(nested instanceof Map)) {
                throw fail(pickle, fromKey, (nested == null ? "no such top-level key" : "value of type "
                        + StateDictUnpickler.describe(nested) + " is not a dict") + "; top-level keys: "
                        + keyList(top));
            }
            dict = (Map<?, ?>) nested;
        } else if (isTensorDict(top) || top.isEmpty()) {
            dict = top;
        } else {
            List<Object> candidates = new ArrayList<>();
            for (Map.Entry<?, ?> e : top.entrySet()) {
                if (e.getValue() instanceof Map && !((Map<?, ?>) e.getValue()).isEmpty()
                        && isTensorDict((Map<?, ?>) e.getValue())) {
                    candidates.add(e.getKey());
                }
            }
            if (candidates.size() != 1) {
                throw fail(pickle, null, "no single state dict to read: top-level keys " + keyList(top)
                        + " hold " + candidates.size() + " dicts of tensors; pick one with the key option");
            }
            fromKey = (String) candidates.get(0);
            dict = (Map<?, ?>) top.get(fromKey);
            LOG.debug("{}: reading the state dict under top-level key '{}'", file, fromKey);
        }
        Map<String, StoredTensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            if (!(e.getKey() instanceof String)) {
                throw fail(pickle, null, "state dict key of type " + StateDictUnpickler.describe(e.getKey())
                        + "; keys must be strings");
            }
            String key = (String) e.getKey();
            if (!(e.getValue() instanceof PickledTensor)) {
                throw fail(pickle, key, "value of type " + StateDictUnpickler.describe(e.getValue()) + " is not a tensor");
            }
            tensors.put(key, toStoredTensor(key, (PickledTensor) e.getValue()));
        }
        select(tensors, fromKey);
    }

    private static boolean isTensorDict(Map<?, ?> map) {
        return !map.isEmpty() && map.values().stream().allMatch(v -> v instanceof PickledTensor);
    }

    private static String keyList(Map<?, ?> map) {
        List<String> keys = new ArrayList<>();
        for (Object k : map.keySet()) {
            if (keys.size() == 20) {
                keys.add("...");
                break;
            }
            keys.add(k instanceof String ? CheckpointException.quote((String) k) : StateDictUnpickler.describe(k));
        }
        return keys.toString();
    }

    private StoredTensor toStoredTensor(String key, PickledTensor pickled) throws CheckpointException {
        StorageRef storage = pickled.storage();
        String name = folder + "/data/" + storage.key();
        ZipEntry entry = entries.get(name);
        if (entry == null) {
            throw fail(name, key, "storage entry is missing");
        }
        long declared;
        try {
            declared = Math.multiplyExact(storage.numel(), storage.dtype().byteSize());
        } catch (ArithmeticException e) {
            declared = -1;
        }
        if (entry.getSize() != declared) {
            throw fail(name, key, "entry holds " + entry.getSize() + " bytes but the pickle declares "
                    + storage.numel() + " " + storage.dtype().torchName() + " elements");
        }
        try {
            return StoredTensor.of(key, storage.dtype(), longs(pickled.size(), "size"),
                    longs(pickled.stride(), "stride"), StateDictUnpickler.toLong(pickled.offset(), "storage offset"),
                    name, storage.numel());
        } catch (IllegalArgumentException | PickleException e) {
            throw fail(name, key, e.getMessage(), e);
        }
    }

    private static long[] longs(Object tuple, String what) {
        if (!(tuple instanceof Object[])) {
            throw new IllegalArgumentException(what + " is of type " + StateDictUnpickler.describe(tuple) + ", not a tuple");
        }
        Object[] items = (Object[]) tuple;
        long[] out = new long[items.length];
        for (int i = 0; i < items.length; i++) {
            out[i] = StateDictUnpickler.toLong(items[i], what);
        }
        return out;
    }

    /**
     * Streams a whole entry, checking its length and CRC-32, and keeps bytes {@code [start, start + length)}.
     *
     * @param key the state-dict key for messages, or null
     */
    private byte[] read(ZipEntry entry, long start, int length, String key) throws CheckpointException {
        byte[] out = new byte[length];
        byte[] skip = new byte[COPY_BUFFER];
        long size = entry.getSize();
        try (CheckedInputStream in = new CheckedInputStream(zip.getInputStream(entry), new CRC32())) {
            long pos = 0;
            while (pos < size) {
                int n;
                if (pos >= start && pos < start + length) {
                    n = in.read(out, (int) (pos - start), (int) (start + length - pos));
                } else {
                    long until = pos < start ? start : size;
                    n = in.read(skip, 0, (int) Math.min(skip.length, until - pos));
                }
                if (n < 0) {
                    throw fail(entry.getName(), key, "entry ends after " + pos + " of its " + size + " bytes");
                }
                pos += n;
            }
            if (in.read() >= 0) {
                throw fail(entry.getName(), key, "entry holds more than its declared " + size + " bytes");
            }
            if (in.getChecksum().getValue() != entry.getCrc()) {
                throw fail(entry.getName(), key, "CRC-32 mismatch: the entry is damaged");
            }
        } catch (CheckpointException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw fail(entry.getName(), key, "cannot read the entry: " + e.getMessage(), e);
        }
        return out;
    }
}
