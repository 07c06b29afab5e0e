// CUDA streams of this library's own runtime for CapturedGraph: the driver's handles, so libtorch's runtime takes them.
#include "cuda_common.cuh"

namespace condjl {

void* cuda_stream_create(int device) {
    DeviceGuard guard(device);
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return s;
}

void cuda_stream_destroy(void* stream, int device) {
    DeviceGuard guard(device);
    cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

void cuda_stream_wait(void* waiter, void* signaller, int device) {
    DeviceGuard guard(device);
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    const cudaError_t recorded = cudaEventRecord(e, static_cast<cudaStream_t>(signaller));
    const cudaError_t waited =
        recorded == cudaSuccess ? cudaStreamWaitEvent(static_cast<cudaStream_t>(waiter), e, 0) : recorded;
    cudaEventDestroy(e);
    check(waited, "stream ordering (cudaEventRecord / cudaStreamWaitEvent)");
}

void cuda_stream_end_capture(void* stream, int device) {
    DeviceGuard guard(device);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status);
    if (status != cudaStreamCaptureStatusNone) {
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &g);
        if (g != nullptr) cudaGraphDestroy(g);
    }
    cudaGetLastError();  // the failed capture's error is not this library's next caller's
}

}  // namespace condjl
