package dev.condjl.topk.checkpoint;

import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Optional;

/**
 * Element types a checkpoint may store, with their PyTorch storage class, their safetensors code and the DJL
 * type they are read as.
 *
 * <p>Two types change on the way into DJL, because DJL's PyTorch engine aborts the JVM on them: {@code bfloat16}
 * is widened to {@code float32} (exact: a bfloat16 is the upper 16 bits of a float32) and {@code int16} to {@code
 * int32}. Files written from DJL arrays never hold them.
 */
public enum CheckpointDType {
    /** IEEE double. */
    FLOAT64("float64", "DoubleStorage", "F64", 8, DataType.FLOAT64),
    /** IEEE single. */
    FLOAT32("float32", "FloatStorage", "F32", 4, DataType.FLOAT32),
    /** IEEE half. */
    FLOAT16("float16", "HalfStorage", "F16", 2, DataType.FLOAT16),
    /** Brain float, read into DJL as float32. */
    BFLOAT16("bfloat16", "BFloat16Storage", "BF16", 2, DataType.FLOAT32),
    /** Signed 64-bit integer. */
    INT64("int64", "LongStorage", "I64", 8, DataType.INT64),
    /** Signed 32-bit integer. */
    INT32("int32", "IntStorage", "I32", 4, DataType.INT32),
    /** Signed 16-bit integer, read into DJL as int32. */
    INT16("int16", "ShortStorage", "I16", 2, DataType.INT32),
    /** Signed 8-bit integer. */
    INT8("int8", "CharStorage", "I8", 1, DataType.INT8),
    /** Unsigned 8-bit integer. */
    UINT8("uint8", "ByteStorage", "U8", 1, DataType.UINT8),
    /** Boolean, one byte per element; any non-zero byte reads as true. */
    BOOL("bool", "BoolStorage", "BOOL", 1, DataType.BOOLEAN);

    private final String torchName;
    private final String storageClass;
    private final String safetensorsCode;
    private final int byteSize;
    private final DataType djlType;

    CheckpointDType(String torchName, String storageClass, String safetensorsCode, int byteSize, DataType djlType) {
        this.torchName = torchName;
        this.storageClass = storageClass;
        this.safetensorsCode = safetensorsCode;
        this.byteSize = byteSize;
        this.djlType = djlType;
    }

    /**
     * The PyTorch name without the {@code torch.} prefix.
     *
     * @return e.g. {@code bfloat16}
     */
    public String torchName() {
        return torchName;
    }

    /**
     * The dtype code in a safetensors header.
     *
     * @return e.g. {@code BF16}
     */
    public String safetensorsCode() {
        return safetensorsCode;
    }

    /**
     * Bytes per stored element.
     *
     * @return 1, 2, 4 or 8
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The DJL type this dtype is read as.
     *
     * @return the DJL data type; {@code FLOAT32} for bfloat16, {@code INT32} for int16
     */
    public DataType djlType() {
        return djlType;
    }

    /**
     * Bytes per element after reading.
     *
     * @param toDjl whether elements are converted to {@link #djlType()}
     * @return the element size in the output buffer
     */
    int outputByteSize(boolean toDjl) {
        return toDjl ? djlType.getNumOfBytes() : byteSize;
    }

    /** The dtype whose legacy storage class ({@code torch.FloatStorage}) has this simple name. */
    static Optional<CheckpointDType> fromStorageClass(String name) {
        return Arrays.stream(values()).filter(d -> d.storageClass.equals(name)).findFirst();
    }

    /** The dtype with this safetensors code ({@code F32}). */
    static Optional<CheckpointDType> fromSafetensors(String code) {
        return Arrays.stream(values()).filter(d -> d.safetensorsCode.equals(code)).findFirst();
    }

    /**
     * The dtype a DJL array is written as.
     *
     * @param type a DJL data type
     * @return the stored dtype with the same bits
     * @throws IllegalArgumentException for DJL types with no safetensors/PyTorch counterpart here
     */
    static CheckpointDType fromDjl(DataType type) {
        switch (type) {
            case FLOAT64:
                return FLOAT64;
            case FLOAT32:
                return FLOAT32;
            case FLOAT16:
                return FLOAT16;
            case INT64:
                return INT64;
            case INT32:
                return INT32;
            case INT8:
                return INT8;
            case UINT8:
                return UINT8;
            case BOOLEAN:
                return BOOL;
            default:
                throw new IllegalArgumentException("data type " + type + " cannot be written to a checkpoint");
        }
    }

    /**
     * Copies one element from {@code src} at byte index {@code srcByte} to the position of {@code dst}. Byte
     * order comes from each buffer.
     *
     * @param toDjl whether to convert to {@link #djlType()} (bfloat16 to float32, int16 to int32)
     */
    void copyElement(ByteBuffer src, int srcByte, ByteBuffer dst, boolean toDjl) {
        switch (this) {
            case FLOAT64:
            case INT64:
                dst.putLong(src.getLong(srcByte));
                break;
            case FLOAT32:
            case INT32:
                dst.putInt(src.getInt(srcByte));
                break;
            case BFLOAT16:
                if (toDjl) {
                    dst.putInt((src.getShort(srcByte) & 0xffff) << 16);
                } else {
                    dst.putShort(src.getShort(srcByte));
                }
                break;
            case INT16:
                if (toDjl) {
                    dst.putInt(src.getShort(srcByte));
                } else {
                    dst.putShort(src.getShort(srcByte));
                }
                break;
            case FLOAT16:
                dst.putShort(src.getShort(srcByte));
                break;
            case BOOL:
                dst.put(src.get(srcByte) != 0 ? (byte) 1 : (byte) 0);
                break;
            default:
                dst.put(src.get(srcByte));
                break;
        }
    }

    /**
     * Whether {@link #copyElement} changes the bits (so a bulk copy would be wrong).
     *
     * @param toDjl whether elements are converted to {@link #djlType()}
     * @return true for bfloat16/int16 into DJL and for bool (normalized to 0/1)
     */
    boolean rewritesBits(boolean toDjl) {
        return this == BOOL || (toDjl && outputByteSize(true) != byteSize);
    }
}
