// Helpers of the CUDA sources: error checks, the current-device guard, and float32/float16 elements read and written
// as float.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "condjl_ops.h"

namespace condjl {

inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw RuntimeError(std::string(what) + ": " + cudaGetErrorString(err));
}

// Makes `device` current for the guard's lifetime (device < 0: leaves the current device).
class DeviceGuard {
   public:
    explicit DeviceGuard(int device) {
        if (device < 0) return;
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (device != previous_) {
            check(cudaSetDevice(device), "cudaSetDevice");
            changed_ = true;
        }
    }
    ~DeviceGuard() {
        if (changed_) cudaSetDevice(previous_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

   private:
    int previous_ = 0;
    bool changed_ = false;
};

template <typename T>
__device__ __forceinline__ float load_f(const T* p, int64_t i);
template <>
__device__ __forceinline__ float load_f<float>(const float* p, int64_t i) {
    return p[i];
}
template <>
__device__ __forceinline__ float load_f<__half>(const __half* p, int64_t i) {
    return __half2float(p[i]);
}
__device__ __forceinline__ void store_f(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
// v as stored in a T.
__device__ __forceinline__ float stored(float v, const float*) { return v; }
__device__ __forceinline__ float stored(float v, const __half*) { return __half2float(__float2half_rn(v)); }

}  // namespace condjl
