// libtorch's stable C shim (torch/csrc/inductor/aoti_torch/c/shim.h), resolved at run time from the libtorch that
// DJL has already loaded, so that this library needs neither libtorch headers nor a link against libtorch and
// also loads where there is no libtorch (raw-buffer entry points only). A handle is DJL's PtNDArray handle, an
// at::Tensor*.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace condjl {

using TensorHandle = void*;

struct TorchShim {
    int32_t (*get_data_ptr)(TensorHandle, void**);
    int32_t (*get_dim)(TensorHandle, int64_t*);
    int32_t (*get_sizes)(TensorHandle, int64_t**);
    int32_t (*get_strides)(TensorHandle, int64_t**);
    int32_t (*get_dtype)(TensorHandle, int32_t*);
    int32_t (*get_device_type)(TensorHandle, int32_t*);
    int32_t (*get_device_index)(TensorHandle, int32_t*);
    int32_t (*empty_strided)(int64_t, const int64_t*, const int64_t*, int32_t, int32_t, int32_t, TensorHandle*);
    int32_t (*copy)(TensorHandle, TensorHandle, int32_t);
    int32_t (*delete_tensor)(TensorHandle);
    // Calls an aten op through the dispatcher, autograd included (null where this libtorch lacks it).
    int32_t (*call_dispatcher)(const char*, const char*, uint64_t*);
    int32_t (*new_tensor_handle)(TensorHandle, TensorHandle*);
    // A view of the tensor's storage with the given sizes and strides, without autograd history (null where absent).
    int32_t (*reinterpret_tensor)(TensorHandle, int64_t, const int64_t*, const int64_t*, int64_t, TensorHandle*);
    // Lists of StableIValues (torch 2.11 has them); null where this libtorch's dispatcher takes no list arguments.
    int32_t (*new_list)(size_t, void**);
    int32_t (*list_push_back)(void*, uint64_t);
    int32_t (*delete_list)(void*);
    // From libtorch_cuda; null when that library is not loaded (then the legacy default stream is used).
    int32_t (*current_cuda_stream)(int32_t, void**);
    // at::globalContext() and its cuBLAS TF32 switch (torch.backends.cuda.matmul.allow_tf32): C++ symbols of
    // libtorch_cpu, not of its C shim (the Itanium ABI passes `this` first); null where absent.
    void* (*global_context)();
    void (*set_allow_tf32_cublas)(void*, bool);
    bool (*allow_tf32_cublas)(const void*);
    int32_t dtype_f32;
    int32_t dtype_f16;
    int32_t dtype_bf16;
    int32_t dtype_bool;
    int32_t dtype_i64;
    int32_t dtype_f64;
    int32_t device_cpu;
    int32_t device_cuda;
    std::vector<std::pair<int32_t, std::string>> dtype_names;  // for error messages
};

// Binds on first use; throws RuntimeError when no libtorch is loaded in this process.
const TorchShim& torch_shim();

// A tensor described through the shim. Borrows the caller's handle; when contiguous() had to copy, owns the copy.
class Tensor {
   public:
    Tensor(TensorHandle handle, const char* name);
    ~Tensor();
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;

    const char* name() const { return name_; }
    const std::vector<int64_t>& sizes() const { return sizes_; }
    const std::vector<int64_t>& strides() const { return strides_; }
    TensorHandle handle() const { return handle_; }
    int64_t numel() const;
    int32_t dtype() const { return dtype_; }
    int32_t device_type() const { return device_type_; }
    int32_t device_index() const { return device_index_; }
    std::string device() const;
    std::string shape() const;
    std::string dtype_name() const;
    // The data pointer of a contiguous view: the tensor's own, or a contiguous copy made here.
    void* contiguous_data();
    // The tensor's own data pointer, for writing; throws ArgumentError unless it is contiguous.
    void* data_in_place();
    bool is_contiguous() const;

   private:
    const TorchShim& shim_;
    const char* name_;
    TensorHandle handle_;
    TensorHandle copy_ = nullptr;
    std::vector<int64_t> sizes_;
    std::vector<int64_t> strides_;
    int32_t dtype_ = 0;
    int32_t device_type_ = 0;
    int32_t device_index_ = 0;
};

// The argument stack of one aoti_torch_call_dispatcher call, in libtorch's StableIValue encoding (to_ivalue in
// shim_common.cpp; the same from torch 2.7 to 2.11): one uint64 slot per schema argument, in schema order, defaults
// included. A tensor is a new handle that the call steals; an optional is 0 for None, else a pointer to a heap slot
// (new uint64_t) holding the value, which the call deletes; a double is its bits; a bool 0 or 1; a list (torch 2.11
// has them) a handle from torch_new_list_reserve_size, which the call deletes. Results come back
// from slot 0. What the call has not taken is freed here; a failed call may leak what libtorch had not yet converted
// (never a double free).
class DispatcherCall {
   public:
    // Throws RuntimeError where this libtorch lacks the dispatcher entry points.
    DispatcherCall();
    ~DispatcherCall();
    DispatcherCall(const DispatcherCall&) = delete;
    DispatcherCall& operator=(const DispatcherCall&) = delete;

    // A new reference to a caller's (DJL's) tensor; the caller keeps its handle.
    void tensor(TensorHandle borrowed);
    // None when borrowed is null.
    void optional_tensor(TensorHandle borrowed);
    void f64(double value);
    void optional_f64(double value);
    void boolean(bool value);
    void i64(int64_t value);
    // An int[] / SymInt[] argument; throws RuntimeError where this libtorch has no list entry points.
    void int_list(const std::vector<int64_t>& values);
    // Runs opName.overload; returns the first result, a tensor the caller owns.
    TensorHandle call_returning_tensor(const char* op, const char* overload);

   private:
    uint64_t* box(uint64_t value);

    std::vector<uint64_t> stack_;
    std::vector<TensorHandle> tensors_;
    std::vector<uint64_t*> boxes_;
    std::vector<void*> lists_;
};

// "" where DispatcherCall takes lists (int_list), else why not.
std::string dispatcher_lists_missing();

// "(2, 3)", "(4,)", "()".
std::string shape_string(const std::vector<int64_t>& sizes);

// A new contiguous tensor of the given sizes, dtype and device; the caller (DJL) owns the returned handle.
TensorHandle empty_tensor(const std::vector<int64_t>& sizes, int32_t dtype, int32_t device_type, int32_t device_index);

}  // namespace condjl
