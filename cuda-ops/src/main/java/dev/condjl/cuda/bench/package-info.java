/**
 * The H100/CPU benchmark of the fused coordinate-descent kernels on raw buffers
 * ({@link dev.condjl.cuda.bench.CoorDescentBench}) and the plain-Java reference it and the tests measure against.
 */
package dev.condjl.cuda.bench;
