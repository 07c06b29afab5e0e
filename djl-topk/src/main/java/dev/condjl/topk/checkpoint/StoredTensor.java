package dev.condjl.topk.checkpoint;

import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * One tensor as a checkpoint stores it: a strided view of {@code shape} into a storage of {@code storageNumel}
 * elements, starting at element {@code offset}. Element {@code (i0, .., ik)} lives at storage element {@code
 * offset + sum(i_d * strides[d])}.
 *
 * <p>Instances exist only after {@link #of} has checked that every element lies inside the storage and that the
 * tensor fits DJL's 2 GiB buffer limit, so readers can allocate {@link #spanBytes()} and {@link #outputBytes}
 * without further checks.
 */
final class StoredTensor {

    /** DJL creates arrays from one {@code ByteBuffer}, whose capacity is an {@code int}. */
    static final long MAX_BUFFER_BYTES = Integer.MAX_VALUE - 8;

    private static final int MAX_DIMS = 64;

    private final String key;
    private final CheckpointDType dtype;
    private final long[] shape;
    private final long[] strides;
    private final long offset;
    private final String storage;
    private final long numel;
    private final long span;

    private StoredTensor(
            String key, CheckpointDType dtype, long[] shape, long[] strides, long offset, String storage, long numel,
            long span) {
        this.key = key;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        this.storage = storage;
        this.numel = numel;
        this.span = span;
    }

    /**
     * Checks a strided tensor against its storage.
     *
     * @param key the state-dict key (for messages only)
     * @param dtype the element type
     * @param shape sizes, each {@code >= 0}
     * @param strides element strides, each {@code >= 0}, one per dimension
     * @param offset first element in the storage, {@code >= 0}
     * @param storage an id of the storage (zip entry or safetensors key)
     * @param storageNumel the number of elements the storage holds
     * @return the checked tensor
     * @throws IllegalArgumentException naming the problem: negative or overflowing sizes, elements past the end of
     *     the storage, a tensor above 2 GiB
     */
    static StoredTensor of(
            String key, CheckpointDType dtype, long[] shape, long[] strides, long offset, String storage,
            long storageNumel) {
        long numel = numel(shape);
        if (strides.length != shape.length) {
            throw new IllegalArgumentException(
                    "stride " + Arrays.toString(strides) + " does not match shape " + Arrays.toString(shape));
        }
        for (long s : strides) {
            if (s < 0) {
                throw new IllegalArgumentException("negative stride in " + Arrays.toString(strides));
            }
        }
        if (offset < 0) {
            throw new IllegalArgumentException("negative storage offset " + offset);
        }
        long span = 0;
        if (numel > 0) {
            try {
                long last = offset;
                for (int d = 0; d < shape.length; d++) {
                    last = Math.addExact(last, Math.multiplyExact(shape[d] - 1, strides[d]));
                }
                span = last - offset + 1;
                if (last >= storageNumel) {
                    throw new IllegalArgumentException(String.format(
                            "shape %s with stride %s at offset %d needs storage elements up to %d, but the storage"
                                    + " holds %d",
                            Arrays.toString(shape), Arrays.toString(strides), offset, last, storageNumel));
                }
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(
                        "strides " + Arrays.toString(strides) + " overflow a 64-bit storage index", e);
            }
        } else if (offset > storageNumel) {
            throw new IllegalArgumentException(
                    "storage offset " + offset + " is past the end of the storage (" + storageNumel + " elements)");
        }
        int widest = Math.max(dtype.byteSize(), dtype.outputByteSize(true));
        if (numel > MAX_BUFFER_BYTES / widest || span > MAX_BUFFER_BYTES / dtype.byteSize()) {
            throw new IllegalArgumentException(String.format(
                    "tensor of %d %s elements exceeds the 2 GiB per-array limit of DJL's buffer API",
                    numel, dtype.torchName()));
        }
        return new StoredTensor(key, dtype, shape.clone(), strides.clone(), offset, storage, numel, span);
    }

    /**
     * A contiguous (row-major) tensor that is its own storage, as in safetensors.
     *
     * @throws IllegalArgumentException for negative or overflowing sizes
     */
    static StoredTensor contiguous(String key, CheckpointDType dtype, long[] shape, String storage) {
        long numel = numel(shape);
        long[] strides = new long[shape.length];
        long stride = numel == 0 ? 0 : 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            strides[d] = stride;
            stride *= shape[d];
        }
        return of(key, dtype, shape, strides, 0, storage, numel);
    }

    /**
     * The element count of a shape.
     *
     * @throws IllegalArgumentException for too many dimensions, negative sizes or a count above 2^63
     */
    static long numel(long[] shape) {
        if (shape.length > MAX_DIMS) {
            throw new IllegalArgumentException(
                    "shape has " + shape.length + " dimensions; at most " + MAX_DIMS + " are supported");
        }
        long n = 1;
        for (long s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException("negative size in shape " + Arrays.toString(shape));
            }
        }
        try {
            for (long s : shape) {
                n = Math.multiplyExact(n, s);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " overflows a 64-bit element count", e);
        }
        return n;
    }

    String key() {
        return key;
    }

    CheckpointDType dtype() {
        return dtype;
    }

    Shape shape() {
        return new Shape(shape);
    }

    long offset() {
        return offset;
    }

    String storage() {
        return storage;
    }

    long numel() {
        return numel;
    }

    /** The stored size: {@code numel * dtype.byteSize()}. */
    long storedBytes() {
        return numel * dtype.byteSize();
    }

    /** The size after {@link #gather}. */
    long outputBytes(boolean toDjl) {
        return numel * dtype.outputByteSize(toDjl);
    }

    /** Bytes of storage from the first to the last element of this view (0 when empty). */
    long spanBytes() {
        return span * dtype.byteSize();
    }

    /**
     * Copies the elements into a new contiguous row-major direct buffer.
     *
     * @param elements the storage bytes from element {@link #offset()} on ({@link #spanBytes()} of them), in the
     *     file's byte order
     * @param toDjl whether to convert to {@link CheckpointDType#djlType()}
     * @param order the byte order of the result
     * @return a buffer positioned at 0 holding {@link #outputBytes} bytes
     */
    ByteBuffer gather(ByteBuffer elements, boolean toDjl, ByteOrder order) {
        ByteBuffer out = ByteBuffer.allocateDirect((int) outputBytes(toDjl)).order(order);
        if (numel == 0) {
            return out;
        }
        int size = dtype.byteSize();
        if (isContiguous() && !dtype.rewritesBits(toDjl) && (size == 1 || elements.order() == order)) {
            out.put(elements.duplicate().position(0).limit((int) storedBytes()));
            return out.rewind();
        }
        if (isContiguous() && toDjl && dtype == CheckpointDType.BFLOAT16) {
            // the common large case (bf16 LLM weights): a tight loop is several times faster than copyElement
            ShortBuffer from = elements.duplicate().order(elements.order()).asShortBuffer();
            IntBuffer to = out.asIntBuffer();
            for (int i = 0; i < numel; i++) {
                to.put(i, (from.get(i) & 0xffff) << 16);
            }
            return out;
        }
        long[] counter = new long[shape.length];
        long index = 0;
        for (long n = 0; n < numel; n++) {
            dtype.copyElement(elements, (int) (index * size), out, toDjl);
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++counter[d] < shape[d]) {
                    index += strides[d];
                    break;
                }
                index -= strides[d] * (shape[d] - 1);
                counter[d] = 0;
            }
        }
        return out.rewind();
    }

    private boolean isContiguous() {
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && strides[d] != expected) {
                return false;
            }
            expected *= shape[d];
        }
        return true;
    }
}
