package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

/**
 * {@link CondjlOps#topKByInput} on long rows. On the CPU, its twin against a sort by the order its javadoc states; on
 * a GPU, the three paths (rows of up to 256 entries ranked whole; longer ones through a selection of the k best for
 * k up to 65,536, sorted whole beyond) against the CPU twin on the same data, index for index and gate for gate (NaN gates compare as NaN). The rows are full of ties
 * ({@link Ties}), with and without a mask, in float32 and float16.
 */
class TopKByInputTest {

    private static final int ROWS = 3;
    private static final DataType[] TYPES = {DataType.FLOAT32, DataType.FLOAT16};
    private static final float[] SPECIAL = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f,
        1e-45f, -1e-45f, 3e-5f, 1f, -1f, 0.5f, 2f};

    /** How a row's scores and raw values are drawn. */
    enum Ties {
        /** Scores in steps of 0.5, raw values Gaussian. */
        FEW_SCORES,
        /** Scores and raw values rounded to integers: validity and position decide. */
        FEW_SCORES_AND_RAWS,
        /** Half the values NaN, ±inf, ±0, subnormals or small integers. */
        SPECIAL_VALUES,
        /** Scores and raw values a few float32 ulps apart: equal but in their last bits (float16 makes them equal). */
        ULPS_APART,
        /** Scores and raw values a few float16 ulps apart. */
        HALF_ULPS_APART,
        /** One score and raw value for the whole row (0.25 in the first row, 0 in the others). */
        ONE_VALUE
    }

    @Test
    void cpuTwinRanksLongRowsInTheTieBreakOrder() {
        assertTrue(CondjlOps.isAvailable(), CondjlOps::unavailableReason);
        forEachRowSet(new int[] {20_000, 70_000}, Device.cpu(), 11, (what, scores, raw, mask) -> {
            int n = (int) scores.getShape().tail();
            int[][] order = tieBreakOrder(floats(scores), floats(raw), mask == null ? null : mask.toBooleanArray(), n);
            for (int k : ks(n)) {
                NDList got = CondjlOps.topKByInputWithGates(scores, raw, mask, k);
                assertArrayEquals(firstK(order, k), got.get(0).toLongArray(), what + " k=" + k);
                NDArray y = scores.gather(got.get(0), -1);
                assertArrayEquals(floats(y.add(y.onesLike().sub(y))), floats(got.get(1)), what + " k=" + k);
            }
        });
    }

    @Test
    @Tag("gpu")
    void gpuKernelsEqualTheCpuTwinOnLongRows() {
        Assumptions.assumeTrue(CondjlOps.cudaAvailable(), () -> "no usable GPU: " + CondjlOps.cudaUnavailableReason());
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "DJL sees no GPU");
        int[] checked = {0};
        // 256 is the longest row the GPU ranks whole, 257 the shortest it selects from; from 8,192 on a row is split
        // between blocks where the rows leave SMs idle (8,193: two segments)
        int[] lengths = {256, 257, 4096, 8_193, 20_000, 70_000};
        forEachRowSet(lengths, Device.gpu(), 13, (what, scores, raw, mask) -> {
            assertTrue(CondjlOps.supportsTopKByInput(scores));
            NDArray cpuScores = scores.toDevice(Device.cpu(), true);
            NDArray cpuRaw = raw.toDevice(Device.cpu(), true);
            NDArray cpuMask = mask == null ? null : mask.toDevice(Device.cpu(), true);
            for (int k : ks((int) scores.getShape().tail())) {
                NDList cpu = CondjlOps.topKByInputWithGates(cpuScores, cpuRaw, cpuMask, k);
                NDList gpu = CondjlOps.topKByInputWithGates(scores, raw, mask, k);
                long[] indices = cpu.get(0).toLongArray();
                assertArrayEquals(indices, gpu.get(0).toLongArray(), what + " k=" + k);
                assertArrayEquals(indices, CondjlOps.topKByInput(scores, raw, mask, k).toLongArray(), what + " k=" + k);
                assertArrayEquals(floats(cpu.get(1)), floats(gpu.get(1)), what + " k=" + k);
                checked[0]++;
            }
        });
        assertEquals(lengths.length * Ties.values().length * TYPES.length * 2 * 4, checked[0]);
    }

    @Test
    @Tag("gpu")
    void gpuKernelsEqualTheCpuTwinOnManyRowsAndLargeK() {
        Assumptions.assumeTrue(CondjlOps.cudaAvailable(), () -> "no usable GPU: " + CondjlOps.cudaUnavailableReason());
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "DJL sees no GPU");
        Random rnd = new Random(17);
        // 31 rows of 70,000: chunks of 29 rows and 2; 2 rows of 2^21 + 1: a chunk each
        for (int[] rowsAndN : new int[][] {{31, 70_000}, {2, (1 << 21) + 1}}) {
            int rows = rowsAndN[0];
            int n = rowsAndN[1];
            float[] s = new float[rows * n];
            float[] r = new float[s.length];
            boolean[] valid = new boolean[s.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = Math.round(rnd.nextGaussian() * 2) / 2f;
                r[i] = Math.round(rnd.nextGaussian());
                valid[i] = rnd.nextInt(3) > 0;
            }
            Shape shape = new Shape(rows, n);
            try (NDManager cpu = NDManager.newBaseManager(Device.cpu());
                    NDManager gpu = NDManager.newBaseManager(Device.gpu())) {
                NDArray[] onCpu = {cpu.create(s, shape), cpu.create(r, shape), cpu.create(valid, shape)};
                NDArray[] onGpu = {gpu.create(s, shape), gpu.create(r, shape), gpu.create(valid, shape)};
                // k up to 65,536 goes through the selection, a larger one sorts whole rows
                for (int k : new int[] {n / 8, 65_536, 65_537, n}) {
                    NDList expected = CondjlOps.topKByInputWithGates(onCpu[0], onCpu[1], onCpu[2], k);
                    NDList got = CondjlOps.topKByInputWithGates(onGpu[0], onGpu[1], onGpu[2], k);
                    String what = rows + " rows of " + n + ", k=" + k;
                    assertArrayEquals(expected.get(0).toLongArray(), got.get(0).toLongArray(), what);
                    assertArrayEquals(floats(expected.get(1)), floats(got.get(1)), what);
                }
            }
        }
    }

    /** A check of one set of rows: (ROWS, n) scores and raw values, and null or a mask. */
    private interface RowSetCheck {
        void check(String what, NDArray scores, NDArray raw, NDArray mask);
    }

    /** Runs check on the rows of every length in ns, every {@link Ties}, dtype and mask (none or random), on device. */
    private static void forEachRowSet(int[] ns, Device device, long seed, RowSetCheck check) {
        Random rnd = new Random(seed);
        for (int n : ns) {
            Shape shape = new Shape(ROWS, n);
            for (Ties ties : Ties.values()) {
                float[][] drawn = draw(ties, n, rnd);
                boolean[] valid = validity(n, rnd);
                try (NDManager m = NDManager.newBaseManager(device)) {
                    for (DataType type : TYPES) {
                        NDArray scores = m.create(drawn[0], shape).toType(type, false);
                        NDArray raw = m.create(drawn[1], shape).toType(type, false);
                        for (NDArray mask : new NDArray[] {null, m.create(valid, shape)}) {
                            check.check("n=" + n + " " + ties + " " + type + " mask " + (mask != null), scores, raw,
                                    mask);
                        }
                    }
                }
            }
        }
    }

    /** k small, n/8 (the router's share) and the whole row. */
    private static int[] ks(int n) {
        return new int[] {1, 7, n / 8, n};
    }

    /** {scores, raw}, ROWS × n each. */
    private static float[][] draw(Ties ties, int n, Random rnd) {
        float[] s = new float[ROWS * n];
        float[] r = new float[s.length];
        float ulp = Math.ulp(1f);
        for (int i = 0; i < s.length; i++) {
            float a = (float) rnd.nextGaussian();
            float b = (float) rnd.nextGaussian();
            switch (ties) {
                case FEW_SCORES -> s[i] = Math.round(a * 2) / 2f;
                case FEW_SCORES_AND_RAWS -> {
                    s[i] = Math.round(a);
                    b = Math.round(b);
                }
                case SPECIAL_VALUES -> {
                    s[i] = rnd.nextBoolean() ? SPECIAL[rnd.nextInt(SPECIAL.length)] : a;
                    b = rnd.nextBoolean() ? SPECIAL[rnd.nextInt(SPECIAL.length)] : b;
                }
                case ULPS_APART -> {
                    s[i] = 1f + rnd.nextInt(3) * ulp;
                    b = -1f - rnd.nextInt(4) * ulp;
                }
                case HALF_ULPS_APART -> {
                    s[i] = 1f + rnd.nextInt(3) * 0x1p-10f;
                    b = 0.5f + rnd.nextInt(4) * 0x1p-11f;
                }
                case ONE_VALUE -> {
                    s[i] = i < n ? 0.25f : 0f;
                    b = 1f;
                }
            }
            r[i] = b;
        }
        return new float[][] {s, r};
    }

    private static boolean[] validity(int n, Random rnd) {
        boolean[] valid = new boolean[ROWS * n];
        for (int i = 0; i < valid.length; i++) {
            valid[i] = rnd.nextInt(3) > 0;
        }
        return valid;
    }

    /**
     * Each row's positions, best first: by score, then validity, then raw value, then the lower position; floats
     * compare with -0 == +0 and every NaN equal and above +inf.
     */
    private static int[][] tieBreakOrder(float[] s, float[] r, boolean[] valid, int n) {
        int[][] order = new int[ROWS][];
        for (int row = 0; row < ROWS; row++) {
            int base = row * n;
            order[row] = new int[n];
            Integer[] positions = new Integer[n];
            Arrays.setAll(positions, j -> j);
            Arrays.sort(positions, (a, b) -> {
                int c = compare(s[base + b], s[base + a]);
                if (c == 0 && valid != null) {
                    c = Boolean.compare(valid[base + b], valid[base + a]);
                }
                if (c == 0) {
                    c = compare(r[base + b], r[base + a]);
                }
                return c != 0 ? c : Integer.compare(a, b);
            });
            Arrays.setAll(order[row], j -> positions[j]);
        }
        return order;
    }

    private static int compare(float a, float b) {
        return Float.compare(a == 0 ? 0f : a, b == 0 ? 0f : b);
    }

    private static long[] firstK(int[][] order, int k) {
        long[] out = new long[ROWS * k];
        for (int row = 0; row < ROWS; row++) {
            for (int j = 0; j < k; j++) {
                out[row * k + j] = order[row][j];
            }
        }
        return out;
    }

    private static float[] floats(NDArray x) {
        return x.toType(DataType.FLOAT32, false).toFloatArray();
    }
}
