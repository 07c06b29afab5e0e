package dev.condjl.topk.checkpoint;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Loads PyTorch weights into DJL and writes DJL weights back for PyTorch.
 *
 * <p>Reads {@code torch.save} files of torch 1.6 and later ({@code .pt}, {@code .pth}, {@code .bin}: a zip with a
 * pickled state dict) and safetensors files, recognized by content. Both are treated as untrusted input: the
 * pickle may only rebuild tensors (no code runs, other globals are refused by name), every size is checked against
 * the file before memory is allocated for it, and every failure is a {@link CheckpointException} naming the file,
 * the entry and the key. Arrays come out in the file's key order; {@code bfloat16} arrives as {@code float32} and
 * {@code int16} as {@code int32} (DJL's PyTorch engine aborts on both), non-contiguous and storage-sharing tensors
 * arrive as independent contiguous arrays.
 *
 * <p>Writes safetensors: {@link #writeSafetensors} for named arrays, {@link #exportBlock} for a block's parameters
 * under their PyTorch {@code state_dict} names (see {@link StateDicts}), so that in PyTorch {@code
 * model.load_state_dict(safetensors.torch.load_file(path))} takes them unchanged.
 */
public final class Checkpoints {

    private static final Logger LOG = LogManager.getLogger(Checkpoints.class);
    private static final Map<String, String> METADATA = Map.of("format", "pt");

    private Checkpoints() {}

    /**
     * Reads a checkpoint's state dict with the default options.
     *
     * @param file a {@code torch.save} zip file or a safetensors file
     * @param manager the manager that will own the arrays
     * @return key to array, in file order
     * @throws CheckpointException if the file is damaged, hostile, unsupported or beyond a default limit
     */
    public static Map<String, NDArray> read(Path file, NDManager manager) throws CheckpointException {
        return read(file, manager, ReadOptions.defaults());
    }

    /**
     * Reads a checkpoint's state dict.
     *
     * @param file a {@code torch.save} zip file or a safetensors file
     * @param manager the manager that will own the arrays (on failure, nothing is left attached to it)
     * @param options which dict to read, which keys to strip, rename or exclude, and the limits
     * @return key to array, in file order
     * @throws CheckpointException if the file is damaged, hostile, unsupported or beyond a limit
     */
    public static Map<String, NDArray> read(Path file, NDManager manager, ReadOptions options)
            throws CheckpointException {
        try (CheckpointReader reader = CheckpointReader.open(file, options);
                NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> out = new LinkedHashMap<>();
            for (Map.Entry<String, StoredTensor> e : reader.tensors().entrySet()) {
                StoredTensor t = e.getValue();
                NDArray array = t.numel() == 0
                        ? scratch.create(t.shape(), t.dtype().djlType())
                        : scratch.create(t.gather(reader.elements(t), true, ByteOrder.nativeOrder()), t.shape(),
                                t.dtype().djlType());
                array.setName(e.getKey());
                out.put(e.getKey(), array);
            }
            for (NDArray array : out.values()) {
                array.attach(manager);
            }
            LOG.debug("{}: read {} tensors", file, out.size());
            return Collections.unmodifiableMap(out);
        }
    }

    /**
     * Describes the tensors {@link #read} would return, without reading their data.
     *
     * @param file a {@code torch.save} zip file or a safetensors file
     * @param options which dict to describe and the limits
     * @return the format, the selected nested key and the tensors
     * @throws CheckpointException if the file fails a check that does not need the tensor data
     */
    public static CheckpointInfo inspect(Path file, ReadOptions options) throws CheckpointException {
        try (CheckpointReader reader = CheckpointReader.open(file, options)) {
            List<TensorEntry> entries = new ArrayList<>();
            reader.tensors().forEach((key, t) -> entries.add(new TensorEntry(key, t.dtype(), t.shape(),
                    t.storedBytes())));
            return new CheckpointInfo(file, reader.format(), reader.selectedKey(), entries);
        }
    }

    /**
     * Describes a checkpoint with the default options.
     *
     * @param file a {@code torch.save} zip file or a safetensors file
     * @return the format, the selected nested key and the tensors
     * @throws CheckpointException if the file fails a check that does not need the tensor data
     */
    public static CheckpointInfo inspect(Path file) throws CheckpointException {
        return inspect(file, ReadOptions.defaults());
    }

    /**
     * Converts a checkpoint to safetensors without going through DJL: dtypes are kept (bfloat16 stays bfloat16),
     * views become contiguous, one tensor is in memory at a time.
     *
     * @param in a {@code torch.save} zip file or a safetensors file
     * @param out the safetensors file to write (replaced when complete)
     * @param options which dict to convert, which keys to strip, rename or exclude, and the limits
     * @return what was written
     * @throws CheckpointException if {@code in} fails a check
     * @throws IOException if {@code out} cannot be written
     */
    public static CheckpointInfo convertToSafetensors(Path in, Path out, ReadOptions options) throws IOException {
        try (CheckpointReader reader = CheckpointReader.open(in, options)) {
            List<SafetensorsWriter.Entry> entries = new ArrayList<>();
            List<TensorEntry> written = new ArrayList<>();
            for (Map.Entry<String, StoredTensor> e : reader.tensors().entrySet()) {
                StoredTensor t = e.getValue();
                entries.add(new SafetensorsWriter.Entry(e.getKey(), t.dtype(), t.shape().getShape(),
                        () -> t.gather(t.numel() == 0 ? ByteBuffer.allocate(0) : reader.elements(t), false,
                                ByteOrder.LITTLE_ENDIAN)));
                written.add(new TensorEntry(e.getKey(), t.dtype(), t.shape(), t.storedBytes()));
            }
            SafetensorsWriter.write(out, entries, METADATA);
            return new CheckpointInfo(out, CheckpointFormat.SAFETENSORS, reader.selectedKey(), written);
        }
    }

    /**
     * Writes named arrays to a safetensors file in map order.
     *
     * @param file the file to write (replaced when complete)
     * @param arrays key to array; float64/32/16, int64/32/8, uint8 and boolean arrays on any device
     * @throws IllegalArgumentException if an array has another data type
     * @throws IOException if the file cannot be written
     */
    public static void writeSafetensors(Path file, Map<String, NDArray> arrays) throws IOException {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
            NDArray array = e.getValue();
            CheckpointDType dtype;
            try {
                dtype = CheckpointDType.fromDjl(array.getDataType());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("array '" + e.getKey() + "': " + ex.getMessage(), ex);
            }
            long[] shape = array.getShape().getShape();
            entries.add(new SafetensorsWriter.Entry(e.getKey(), dtype, shape, () -> littleEndian(array, dtype, shape)));
        }
        SafetensorsWriter.write(file, entries, METADATA);
    }

    /**
     * Writes a block's parameters to a safetensors file under their PyTorch {@code state_dict} names; a tied
     * parameter (see {@link TiedWeights}) is written under its second key too, as PyTorch's {@code state_dict()}
     * lists it.
     *
     * @param block an initialized block
     * @param file the file to write (replaced when complete)
     * @throws IllegalStateException if a parameter has no array yet, or a tied key names no parameter
     * @throws IOException if the file cannot be written
     */
    public static void exportBlock(Block block, Path file) throws IOException {
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : StateDicts.parameters(block).entrySet()) {
            if (!e.getValue().isInitialized()) {
                throw new IllegalStateException(
                        "parameter '" + e.getKey() + "' has no array; initialize the block before exporting");
            }
            arrays.put(e.getKey(), e.getValue().getArray());
        }
        for (Map.Entry<String, String> tie : StateDicts.tiedKeys(block).entrySet()) {
            NDArray shared = arrays.get(tie.getValue());
            if (shared == null) {
                throw new IllegalStateException("'" + tie.getKey() + "' is tied to '" + tie.getValue()
                        + "', which is not a parameter of the block");
            }
            arrays.put(tie.getKey(), shared);
        }
        writeSafetensors(file, arrays);
    }

    /**
     * Reads a checkpoint with the default options and copies it into an initialized block, strictly: every
     * parameter must be in the file under its PyTorch {@code state_dict} name with its shape, and no other key may
     * be (tied copies of a parameter excepted, see {@link TiedWeights}).
     *
     * @param block an initialized block
     * @param file a {@code torch.save} zip file or a safetensors file
     * @return what was loaded (complete) and which tied keys were accepted
     * @throws CheckpointException if the file fails a check
     * @throws IllegalArgumentException if the keys do not line up; the message lists every key that did not
     */
    public static StateDicts.LoadReport loadInto(Block block, Path file) throws CheckpointException {
        return loadInto(block, file, ReadOptions.defaults(), true);
    }

    /**
     * Reads a checkpoint and copies it into an initialized block by PyTorch {@code state_dict} name, converting
     * dtype and device to each parameter's.
     *
     * @param block an initialized block
     * @param file a {@code torch.save} zip file or a safetensors file
     * @param options which dict to read, which keys to strip, rename or exclude, and the limits
     * @param strict whether a missing, unexpected or mismatched key is an error (then nothing is copied)
     * @return what was loaded and what did not line up
     * @throws CheckpointException if the file fails a check
     * @throws IllegalArgumentException if {@code strict} and the keys do not line up
     */
    public static StateDicts.LoadReport loadInto(Block block, Path file, ReadOptions options, boolean strict)
            throws CheckpointException {
        Device device = StateDicts.parameters(block).values().stream()
                .filter(Parameter::isInitialized)
                .map(p -> p.getArray().getDevice())
                .findFirst()
                .orElse(null);
        try (NDManager manager = NDManager.newBaseManager(device)) {
            return StateDicts.load(block, read(file, manager, options), strict);
        }
    }

    private static ByteBuffer littleEndian(NDArray array, CheckpointDType dtype, long[] shape) {
        ByteBuffer bytes = array.toByteBuffer();
        if (bytes.order() == ByteOrder.LITTLE_ENDIAN || dtype.byteSize() == 1) {
            return bytes;
        }
        return StoredTensor.contiguous("", dtype, shape, "").gather(bytes, false, ByteOrder.LITTLE_ENDIAN);
    }
}
