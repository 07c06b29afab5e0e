package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.core.Linear;

/**
 * The routed ViT's input side: an image cut into patch tokens ({@code to_patch_embedding}) and the fixed 2-D
 * sin-cos position code added to them ({@code posemb_sincos_2d}).
 */
final class PatchEmbedding {

    private static final double TEMPERATURE = 10000;

    private PatchEmbedding() {}

    /**
     * The reference's {@code to_patch_embedding}: {@code 0} patchify, {@code 1} LayerNorm {@code (p·p·c)}, {@code 2}
     * Linear {@code (dim, p·p·c)}, {@code 3} LayerNorm {@code (dim)}.
     *
     * @param channels image channels
     * @param patchHeight patch rows
     * @param patchWidth patch columns
     * @param dim model width
     * @return the block, {@code (b, channels, H, W)} to {@code (b, H/patchHeight, W/patchWidth, dim)}
     */
    static Sequential toPatchEmbedding(int channels, int patchHeight, int patchWidth, int dim) {
        Sequential seq = new Sequential();
        seq.add(LambdaBlock.singleton(img -> patchify(img, channels, patchHeight, patchWidth), "patchify"));
        seq.add(new LayerNorm());
        seq.add(Linear.builder().setUnits(dim).build());
        seq.add(new LayerNorm());
        return seq;
    }

    /**
     * einops {@code b c (h p1) (w p2) -> b h w (p1 p2 c)}, with the image checks.
     *
     * @param img {@code (b, channels, H, W)}
     * @param channels expected channels
     * @param patchHeight patch rows, dividing H
     * @param patchWidth patch columns, dividing W
     * @return {@code (b, H/patchHeight, W/patchWidth, patchHeight·patchWidth·channels)}
     * @throws IllegalArgumentException if the image shape does not fit
     */
    static NDArray patchify(NDArray img, int channels, int patchHeight, int patchWidth) {
        Shape s = img.getShape();
        if (s.dimension() != 4 || s.get(1) != channels || s.get(2) % patchHeight != 0
                || s.get(3) % patchWidth != 0) {
            throw new IllegalArgumentException("img must have shape (b, " + channels + ", H, W) with H a multiple of "
                    + patchHeight + " and W a multiple of " + patchWidth + ", got " + s);
        }
        long b = s.get(0);
        long h = s.get(2) / patchHeight;
        long w = s.get(3) / patchWidth;
        return img.reshape(b, channels, h, patchHeight, w, patchWidth)
                .transpose(0, 2, 4, 3, 5, 1)
                .reshape(b, h, w, (long) patchHeight * patchWidth * channels);
    }

    /**
     * The reference's {@code posemb_sincos_2d}: for the grid cell at row {@code y}, column {@code x},
     * {@code pe = [sin(x·ω), cos(x·ω), sin(y·ω), cos(y·ω)]} with {@code ω_j = 10000^(−j/(dim/4 − 1))},
     * {@code j = 0..dim/4−1}, computed in float32 as the reference does.
     *
     * @param manager where the result is created
     * @param height grid rows
     * @param width grid columns
     * @param dim feature size, a multiple of 4 and at least 8
     * @return float32 {@code (height, width, dim)}
     * @throws IllegalArgumentException if {@code dim} is not a multiple of 4 or is below 8
     */
    static NDArray posembSincos2d(NDManager manager, int height, int width, int dim) {
        if (dim % 4 != 0 || dim < 8) {
            throw new IllegalArgumentException(
                    "feature dimension (" + dim + ") must be a multiple of 4 and >= 8 for the sin-cos embedding");
        }
        int quarter = dim / 4;
        float[] omega = new float[quarter];
        for (int j = 0; j < quarter; j++) {
            float exponent = (float) j / (float) (quarter - 1);
            omega[j] = (float) (1.0 / (float) Math.pow(TEMPERATURE, exponent));
        }
        float[] pe = new float[height * width * dim];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int base = (y * width + x) * dim;
                for (int j = 0; j < quarter; j++) {
                    float ax = x * omega[j];
                    float ay = y * omega[j];
                    pe[base + j] = (float) Math.sin(ax);
                    pe[base + quarter + j] = (float) Math.cos(ax);
                    pe[base + 2 * quarter + j] = (float) Math.sin(ay);
                    pe[base + 3 * quarter + j] = (float) Math.cos(ay);
                }
            }
        }
        return manager.create(pe, new Shape(height, width, dim));
    }
}
