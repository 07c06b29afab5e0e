// Helpers of the CUDA sources: error checks and the current-device guard.
#pragma once

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

}  // namespace condjl
