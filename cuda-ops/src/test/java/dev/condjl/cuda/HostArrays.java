package dev.condjl.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Direct host buffers for the raw entry points, and random test data. */
final class HostArrays {

    private HostArrays() {}

    static ByteBuffer floats(float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(4 * values.length).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(values);
        return b;
    }

    static ByteBuffer zeros(int floats) {
        return ByteBuffer.allocateDirect(4 * floats).order(ByteOrder.nativeOrder());
    }

    static ByteBuffer bytes(boolean[] mask) {
        ByteBuffer b = ByteBuffer.allocateDirect(mask.length);
        for (int i = 0; i < mask.length; i++) {
            b.put(i, (byte) (mask[i] ? 1 : 0));
        }
        return b;
    }

    static float[] read(ByteBuffer b) {
        float[] out = new float[b.capacity() / 4];
        b.asFloatBuffer().get(0, out);
        return out;
    }

    static float[] gaussian(Random rnd, int count, double scale) {
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = (float) (rnd.nextGaussian() * scale);
        }
        return out;
    }

    static double maxAbsDiff(float[] a, double[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - b[i]);
            if (Double.isNaN(d)) {
                return Double.NaN;
            }
            max = Math.max(max, d);
        }
        return max;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double[] bd = new double[b.length];
        for (int i = 0; i < b.length; i++) {
            bd[i] = b[i];
        }
        return maxAbsDiff(a, bd);
    }

    static double[] toDouble(float[] a) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i];
        }
        return out;
    }

    /** float16 bits of {@code f}, rounded to nearest even (normal range and zero; enough for test data). */
    static short toHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = ((x >>> 23) & 0xff) - 127 + 15;
        int mant = x & 0x7fffff;
        if (exp <= 0) {
            return (short) sign;
        }
        int h = (exp << 10) | (mant >>> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) {
            h++;
        }
        return (short) (sign | h);
    }

    static float fromHalf(short bits) {
        int h = bits & 0xffff;
        int exp = (h >>> 10) & 0x1f;
        float mag = exp == 0 ? (h & 0x3ff) * 0x1p-24f : Float.intBitsToFloat(((exp + 112) << 23) | ((h & 0x3ff) << 13));
        return (h & 0x8000) != 0 ? -mag : mag;
    }

    static ByteBuffer halves(float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(2 * values.length).order(ByteOrder.nativeOrder());
        for (int i = 0; i < values.length; i++) {
            b.putShort(2 * i, toHalf(values[i]));
        }
        return b;
    }

    static float[] readHalves(ByteBuffer b) {
        float[] out = new float[b.capacity() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = fromHalf(b.getShort(2 * i));
        }
        return out;
    }
}
