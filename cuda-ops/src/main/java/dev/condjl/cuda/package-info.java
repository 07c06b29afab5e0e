/**
 * Fused native kernels behind JNI: {@link dev.condjl.cuda.CondjlOps} holds coordinate descent (the CoLT5 router's
 * soft top-k) with all iterations in one CUDA launch or one pass of CPU threads, its implicit-function gradient, the
 * router's tie-broken top-k and libtorch's fused attention; {@link dev.condjl.cuda.FusedNorm} libtorch's fused RMS
 * norm; {@link dev.condjl.cuda.OptimizerOps} and {@link dev.condjl.cuda.FusedAdam} the optimizer step. The libtorch
 * ops are called through its dispatcher, so autograd records them. {@link dev.condjl.cuda.EpsSchedule} describes the
 * ε schedule; {@link dev.condjl.cuda.LaunchConfig} forces CUDA launch settings in tests and benchmarks.
 * {@link dev.condjl.cuda.CudaGraph} captures DJL work in a CUDA graph (libtorch's {@code at::cuda::CUDAGraph}) and
 * replays it; {@link dev.condjl.cuda.GraphedBackward} does so for a training step's forward and backward.
 */
package dev.condjl.cuda;
