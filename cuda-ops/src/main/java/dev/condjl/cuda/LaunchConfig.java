package dev.condjl.cuda;

/**
 * A forced CUDA launch configuration for tests and benchmarks; {@link #AUTO} lets the library choose.
 *
 * @param blocksPerRow blocks that share one row, 0 = automatic
 * @param threads threads per block (a multiple of 32 up to 1024), 0 = automatic
 * @param mode how the blocks of a row combine their reductions
 */
public record LaunchConfig(int blocksPerRow, int threads, Mode mode) {

    /** Automatic choice of everything. */
    public static final LaunchConfig AUTO = new LaunchConfig(0, 0, Mode.AUTO);

    /** How the blocks sharing a row combine their per-iteration reductions. */
    public enum Mode {
        /** Chosen from the row length and the device. */
        AUTO,
        /** One block per row, no cross-block reduction. */
        BLOCK,
        /** A thread-block cluster per row (compute capability 9.0+, at most 16 blocks), distributed shared memory. */
        CLUSTER,
        /** A cooperative launch; partials in global memory and a grid barrier per iteration. */
        GRID
    }

    /** Validates the arguments. */
    public LaunchConfig {
        if (blocksPerRow < 0 || threads < 0 || mode == null) {
            throw new IllegalArgumentException("blocksPerRow and threads must be >= 0 and mode non-null, got "
                    + blocksPerRow + ", " + threads + ", " + mode);
        }
    }
}
