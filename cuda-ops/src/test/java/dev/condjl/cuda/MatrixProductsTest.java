package dev.condjl.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@link MatrixProducts}: the switch reads back what was set (on every libtorch that exports it: the CPU engine's
 * 2.7.1 and the GPU machine's 2.11), and on a GPU it changes the float32 products: with TF32 their error against a
 * float64 product grows from float32's (about 10⁻⁶ of the largest entry) to TF32's (about 10⁻³).
 */
class MatrixProductsTest {

    @AfterEach
    void tf32Off() {
        MatrixProducts.setTf32(false);
    }

    @Test
    void theSwitchReadsBackWhatWasSet() {
        assertEquals("", MatrixProducts.tf32UnavailableReason());
        assertFalse(MatrixProducts.tf32(), "libtorch's default");
        MatrixProducts.setTf32(true);
        assertTrue(MatrixProducts.tf32());
        MatrixProducts.setTf32(false);
        assertFalse(MatrixProducts.tf32());
    }

    @Test
    @Tag("gpu")
    void tf32RoundsTheFloat32ProductsOfAGpu() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "DJL sees no GPU");
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray a = m.randomNormal(new Shape(1024, 1024));
            NDArray b = m.randomNormal(new Shape(1024, 1024));
            NDArray exact = a.toType(DataType.FLOAT64, false).matMul(b.toType(DataType.FLOAT64, false));
            double scale = exact.abs().max().getDouble();
            double ieee = relativeError(a.matMul(b), exact, scale);
            MatrixProducts.setTf32(true);
            double tf32 = relativeError(a.matMul(b), exact, scale);
            assertTrue(ieee < 1e-5, "float32 error " + ieee);
            assertTrue(tf32 > 1e-4, "TF32 error " + tf32 + " (float32 " + ieee + ")");
        }
    }

    private static double relativeError(NDArray product, NDArray exact, double scale) {
        return product.toType(DataType.FLOAT64, false).sub(exact).abs().max().getDouble() / scale;
    }
}
