// CUDA kernels of the optimizer helpers (optim_cpu.cpp is their CPU twin): the Adam/AdamW step on one tensor, and
// the sum of squares and the scaling of a list of tensors, one launch per kMaxTensors tensors. The sum is
// deterministic: per-block partials, then one sum in a fixed order.
#include <cuda_runtime.h>

#include <algorithm>

#include "adam_step.h"
#include "condjl_ops.h"
#include "cuda_common.cuh"

namespace condjl {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096;
// Tensors per launch: their pointers and sizes travel in the kernel's parameter block (1.5 KiB of its 4 KiB).
constexpr int kMaxTensors = 96;
// Blocks per tensor of the sum of squares: its partials, reduced in a fixed order by a second kernel.
constexpr int kSquaresBlocks = 32;

struct ListArgs {
    float* data[kMaxTensors];
    int64_t numel[kMaxTensors];
};

int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>(kMaxBlocks, (n + kThreads - 1) / kThreads)); }

__global__ void __launch_bounds__(kThreads) adam_kernel(const AdamStep p) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        adam_element(p, i);
    }
}

// The sum of v over the block's kThreads threads, in a fixed order; valid in thread 0.
__device__ double block_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    __shared__ double warps[kThreads / 32];
    if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
    __syncthreads();
    double sum = 0;
    if (threadIdx.x == 0) {
        for (int w = 0; w < kThreads / 32; ++w) sum += warps[w];
    }
    return sum;
}

// Block (x, y) writes the double sum of its grid-stride share of tensor y to partials[y * gridDim.x + x].
__global__ void __launch_bounds__(kThreads) squares_kernel(const ListArgs a, double* partials) {
    const float* x = a.data[blockIdx.y];
    const int64_t n = a.numel[blockIdx.y];
    double sum = 0;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const double v = x[i];
        sum += v * v;
    }
    const double block = block_sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.y * gridDim.x + blockIdx.x] = block;
}

// One block: *out = the sum of count partials, in a fixed order (the same bits every run).
__global__ void __launch_bounds__(kThreads) sum_kernel(const double* partials, int64_t count, double* out) {
    double sum = 0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    const double total = block_sum(sum);
    if (threadIdx.x == 0) *out = total;
}

__global__ void __launch_bounds__(kThreads) scale_kernel(const ListArgs a, float factor) {
    float* x = a.data[blockIdx.y];
    const int64_t n = a.numel[blockIdx.y];
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        x[i] = __fmul_rn(x[i], factor);
    }
}

// Tensors [first, first + count) of t, count <= kMaxTensors.
ListArgs group(const TensorList& t, size_t first, size_t count) {
    ListArgs args{};
    for (size_t k = 0; k < count; ++k) {
        args.data[k] = t.data[first + k];
        args.numel[k] = t.numel[first + k];
    }
    return args;
}

}  // namespace

void adam_step_cuda(const AdamStep& p, int device, void* stream) {
    if (p.n == 0) return;
    DeviceGuard guard(device);
    adam_kernel<<<blocks_for(p.n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
    check(cudaGetLastError(), "Adam step launch");
}

int64_t sum_of_squares_scratch(const TensorList& t) { return static_cast<int64_t>(t.data.size()) * kSquaresBlocks; }

void sum_of_squares_cuda(const TensorList& t, double* scratch, double* out, int device, void* stream) {
    DeviceGuard guard(device);
    const auto s = static_cast<cudaStream_t>(stream);
    int64_t written = 0;
    for (size_t first = 0; first < t.data.size(); first += kMaxTensors) {
        const size_t count = std::min<size_t>(kMaxTensors, t.data.size() - first);
        const ListArgs args = group(t, first, count);
        squares_kernel<<<dim3(kSquaresBlocks, static_cast<unsigned>(count)), kThreads, 0, s>>>(args,
                                                                                          scratch + written);
        check(cudaGetLastError(), "sum-of-squares launch");
        written += static_cast<int64_t>(count) * kSquaresBlocks;
    }
    sum_kernel<<<1, kThreads, 0, s>>>(scratch, written, out);
    check(cudaGetLastError(), "sum-of-squares launch");
}

void scale_cuda(const TensorList& t, float factor, int device, void* stream) {
    DeviceGuard guard(device);
    const auto s = static_cast<cudaStream_t>(stream);
    for (size_t first = 0; first < t.data.size(); first += kMaxTensors) {
        const size_t count = std::min<size_t>(kMaxTensors, t.data.size() - first);
        const int64_t longest = *std::max_element(t.numel.begin() + first, t.numel.begin() + first + count);
        if (longest == 0) continue;
        scale_kernel<<<dim3(blocks_for(longest), static_cast<unsigned>(count)), kThreads, 0, s>>>(
            group(t, first, count), factor);
        check(cudaGetLastError(), "scale launch");
    }
}

}  // namespace condjl
