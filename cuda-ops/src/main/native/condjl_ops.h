// Shared declarations of libcondjl_ops: the coordinate-descent problem descriptions, the CPU kernels, the CUDA
// kernels (stubs in a CPU-only build) and the errors the JNI layer turns into Java exceptions.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace condjl {

// Bad caller input; becomes java.lang.IllegalArgumentException.
struct ArgumentError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Anything else that went wrong (CUDA errors, libtorch not bound); becomes java.lang.IllegalStateException.
struct RuntimeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class DType : int { F32 = 0, F16 = 1 };

// The epsilon schedule of coor_descent, kept in double like the reference's Python floats: the iteration t uses
// (float) e_t, with e_0 = start and e_{t+1} = max(e_t * decay, floor). The output uses (float) e_iters.
struct EpsSchedule {
    int iters;
    double start;
    double decay;
    double floor;
};

// One coor_descent call on rows of n contiguous elements (row-major, rows * n in total).
struct CdForward {
    int64_t rows;
    int64_t n;
    DType dtype;
    const void* s;        // scores, dtype
    const uint8_t* mask;   // 1 = keep, 0 = masked; null for none
    const float* logk;     // ln(max(k, 1e-20)) at logk[row * logk_stride]; null to use logk_scalar
    int64_t logk_stride;   // 1: one value per row, 0: one value for all rows
    float logk_scalar;
    EpsSchedule eps;
    void* out;            // dtype, rows * n
    void* weights;        // null, or rows * n of dtype: the implicit-gradient weights q = (y < 1 ? y : 0) / e_final
    void* shares;         // null (always when weights is), or rows * n of dtype: p = q / max(sum q, smallest positive)
};

// The implicit-function gradient of a converged coor_descent solution y, for an upstream gradient g:
// w = y where y < 1 else 0; out = (w / eps) * (g - sum(g w) / sum(w)) per row (0 where sum(w) = 0).
struct CdBackward {
    int64_t rows;
    int64_t n;
    DType dtype;
    const void* y;
    const void* g;
    float eps_final;
    void* out;  // may alias g
};

// The k first positions of each row in the order of tie_break_key.h, best first.
struct TopKByInput {
    int64_t rows;
    int64_t n;
    int64_t k;             // 1 <= k <= n
    DType dtype;           // of scores and raw
    const void* scores;    // rows * n
    const void* raw;       // rows * n, the secondary key
    const uint8_t* mask;   // 1 = valid (ranks above an invalid entry of equal score); null for all valid
    int64_t* indices;      // rows * k
    void* gates;           // null, or rows * k of dtype: y + (1 - y) for each selected score y, each op rounded to dtype
};

// Forces a CUDA launch configuration (tests and benchmarks); 0 = automatic.
struct LaunchOverride {
    int blocks_per_row = 0;
    int threads = 0;
    int mode = 0;  // 0 auto, 1 one block per row, 2 thread-block cluster, 3 cooperative grid
};

// One Adam or AdamW step on n contiguous float32 elements, in place, in DJL's adamUpdate order of float32 operations:
//   g = grad · rescale (when rescale != 1);  g = min(g, clip) (when clip >= 0; NaN stays NaN)
//   AdamW: w -= (w · lr) · wd          Adam: g += wd · w
//   m = m · β1 + (1 − β1) · g;  v = v · β2 + (1 − β2) · g · g;  w -= (m · lr_bc) / (√v + eps)
// With zero_grad the gradient is set to 0 once read (it is then written, and must be the tensor's own memory).
struct AdamStep {
    int64_t n;
    float* weight;
    float* grad;
    float* mean;
    float* variance;
    float lr;
    float lr_bias_corrected;  // lr · √(1 − β2^t) / (1 − β1^t)
    float weight_decay;
    float rescale_grad;
    float clip_grad;  // < 0: no clamp
    float beta1;
    float beta2;
    float eps;
    bool adamw;
    bool zero_grad;
};

// Contiguous float32 tensors of one device, for the multi-tensor kernels.
struct TensorList {
    std::vector<float*> data;
    std::vector<int64_t> numel;
};

// threads: at most this many threads over rows; <= 0 for one per hardware thread.
void cd_forward_cpu(const CdForward& p, int threads);
void cd_backward_cpu(const CdBackward& p, int threads);

// CUDA side. cuda_compiled() is false in a CPU-only build, where every other function throws RuntimeError.
void topk_by_input_cpu(const TopKByInput& p);
void adam_step_cpu(const AdamStep& p, int threads);
// Σ over the tensors of Σ x², accumulated in double.
double sum_of_squares_cpu(const TensorList& t);
// x *= factor in float32, for every element of every tensor.
void scale_cpu(const TensorList& t, float factor, int threads);

// The smallest positive float32 and float16 numbers: the floor of a row's sum of weights (CdForward::shares).
constexpr float kSmallestPositiveF32 = 1.40129846e-45f;
constexpr float kSmallestPositiveF16 = 5.96046448e-8f;

// IEEE half (bits) to float, exactly.
float half_to_float(uint16_t h);
// float to IEEE half (bits), rounded to nearest even.
uint16_t float_to_half(float f);

bool cuda_compiled();
// Empty when the CUDA kernels can run on device 0, else the reason. Probes once and caches the answer.
std::string cuda_probe();
void cd_forward_cuda(const CdForward& p, int device, void* stream, const LaunchOverride& ov);
void cd_backward_cuda(const CdBackward& p, int device, void* stream, const LaunchOverride& ov);
// Bytes of device scratch that topk_by_input_cuda needs for `rows` rows of n entries and this k on `device` (0 for
// short rows); throws ArgumentError where these pass the CUDA kernels' limits.
int64_t topk_by_input_scratch(int64_t rows, int64_t n, int64_t k, int device);
// scratch: topk_by_input_scratch(p.rows, p.n, p.k, device) bytes of device memory, null where that is 0.
void topk_by_input_cuda(const TopKByInput& p, void* scratch, int device, void* stream);
void adam_step_cuda(const AdamStep& p, int device, void* stream);
// Doubles of device scratch that sum_of_squares_cuda needs for t.
int64_t sum_of_squares_scratch(const TensorList& t);
// Writes Σ x² over the tensors (double accumulation, the same bits every run) to out, a double in device memory.
void sum_of_squares_cuda(const TensorList& t, double* scratch, double* out, int device, void* stream);
void scale_cuda(const TensorList& t, float factor, int device, void* stream);
// A readable description of the launch the CUDA kernels would use, e.g. "cluster G=16 T=256 R=8 grid=32".
std::string cuda_describe_launch(int64_t rows, int64_t n, bool backward, int device, const LaunchOverride& ov);

// Raw device-memory helpers for tests and benchmarks on machines without libtorch.
void* cuda_malloc(int64_t bytes);
void cuda_free(void* p);
void cuda_memcpy(void* dst, const void* src, int64_t bytes);
void cuda_memset(void* dst, int value, int64_t bytes);
void cuda_synchronize();
void* cuda_event_create();
void cuda_event_record(void* event, void* stream);
float cuda_event_elapsed_ms(void* start, void* end);
void cuda_event_destroy(void* event);
std::string cuda_device_name();
// Bytes of the current device in use by every process (total minus free, cudaMemGetInfo).
int64_t cuda_memory_used();

// Streams for CapturedGraph (cuda_graph.h): a non-blocking stream of `device`; its destruction; `waiter` waits for the
// work queued so far on `signaller` (either may be null, the legacy default stream); the end of whatever capture the
// stream is in, its graph dropped and the error cleared.
void* cuda_stream_create(int device);
void cuda_stream_destroy(void* stream, int device);
void cuda_stream_wait(void* waiter, void* signaller, int device);
void cuda_stream_end_capture(void* stream, int device);

}  // namespace condjl
