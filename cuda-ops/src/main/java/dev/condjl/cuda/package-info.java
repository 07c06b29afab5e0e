/**
 * Fused native kernels behind one JNI class, {@link dev.condjl.cuda.CondjlOps}: coordinate descent (the CoLT5 router's
 * soft top-k) with all iterations in one CUDA launch or one pass of CPU threads, and its implicit-function gradient.
 * {@link dev.condjl.cuda.EpsSchedule} describes the ε schedule; {@link dev.condjl.cuda.LaunchConfig} forces CUDA
 * launch settings in tests and benchmarks.
 */
package dev.condjl.cuda;
