// CUDA side of a CPU-only build (no nvcc at build time): reports itself unavailable; every entry point throws.
#include "condjl_ops.h"

namespace condjl {
namespace {

[[noreturn]] void unavailable() { throw RuntimeError(cuda_probe()); }

}  // namespace

bool cuda_compiled() { return false; }

std::string cuda_probe() { return "libcondjl_ops was built without CUDA (no nvcc on the build machine)"; }

void cd_forward_cuda(const CdForward&, int, void*, const LaunchOverride&) { unavailable(); }
void cd_backward_cuda(const CdBackward&, int, void*, const LaunchOverride&) { unavailable(); }
int64_t topk_by_input_scratch(int64_t, int64_t, int64_t, int) { unavailable(); }
void topk_by_input_cuda(const TopKByInput&, void*, int, void*) { unavailable(); }
void adam_step_cuda(const AdamStep&, int, void*) { unavailable(); }
int64_t sum_of_squares_scratch(const TensorList&) { unavailable(); }
void sum_of_squares_cuda(const TensorList&, double*, double*, int, void*) { unavailable(); }
void scale_cuda(const TensorList&, float, int, void*) { unavailable(); }
std::string cuda_describe_launch(int64_t, int64_t, bool, int, const LaunchOverride&) { unavailable(); }
void* cuda_malloc(int64_t) { unavailable(); }
void cuda_free(void*) { unavailable(); }
void cuda_memcpy(void*, const void*, int64_t) { unavailable(); }
void cuda_memset(void*, int, int64_t) { unavailable(); }
void cuda_synchronize() { unavailable(); }
void* cuda_event_create() { unavailable(); }
void cuda_event_record(void*, void*) { unavailable(); }
float cuda_event_elapsed_ms(void*, void*) { unavailable(); }
void cuda_event_destroy(void*) { unavailable(); }
std::string cuda_device_name() { unavailable(); }
int64_t cuda_memory_used() { unavailable(); }
void* cuda_stream_create(int) { unavailable(); }
void cuda_stream_destroy(void*, int) {}
void cuda_stream_wait(void*, void*, int) { unavailable(); }
void cuda_stream_end_capture(void*, int) {}

}  // namespace condjl
