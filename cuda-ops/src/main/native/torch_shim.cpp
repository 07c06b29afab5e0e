#include "torch_shim.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "condjl_ops.h"

namespace condjl {
namespace {

template <typename F>
void bind(void* lib, const char* symbol, F& fn) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
    if (fn == nullptr) throw RuntimeError(std::string("libtorch_cpu.so lacks ") + symbol);
}

int32_t constant(void* lib, const char* symbol) {
    int32_t (*fn)() = nullptr;
    bind(lib, symbol, fn);
    return fn();
}

template <typename F>
void bind_if_present(void* lib, const char* symbol, F& fn) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
}

void check(int32_t err, const char* what) {
    if (err != 0) throw RuntimeError(std::string("libtorch ") + what + " failed");
}

TorchShim bind_shim() {
    // RTLD_NOLOAD: only the libtorch that DJL loaded; never a second copy.
    void* cpu = dlopen("libtorch_cpu.so", RTLD_NOLOAD | RTLD_LAZY);
    if (cpu == nullptr) {
        throw RuntimeError("libtorch is not loaded in this process (load DJL's PyTorch engine first)");
    }
    TorchShim s{};
    bind(cpu, "aoti_torch_get_data_ptr", s.get_data_ptr);
    bind(cpu, "aoti_torch_get_dim", s.get_dim);
    bind(cpu, "aoti_torch_get_sizes", s.get_sizes);
    bind(cpu, "aoti_torch_get_strides", s.get_strides);
    bind(cpu, "aoti_torch_get_dtype", s.get_dtype);
    bind(cpu, "aoti_torch_get_device_type", s.get_device_type);
    bind(cpu, "aoti_torch_get_device_index", s.get_device_index);
    bind(cpu, "aoti_torch_empty_strided", s.empty_strided);
    bind(cpu, "aoti_torch_copy_", s.copy);
    bind(cpu, "aoti_torch_delete_tensor_object", s.delete_tensor);
    bind_if_present(cpu, "aoti_torch_call_dispatcher", s.call_dispatcher);
    bind_if_present(cpu, "aoti_torch_new_tensor_handle", s.new_tensor_handle);
    bind_if_present(cpu, "aoti_torch__reinterpret_tensor", s.reinterpret_tensor);
    bind_if_present(cpu, "torch_new_list_reserve_size", s.new_list);
    bind_if_present(cpu, "torch_list_push_back", s.list_push_back);
    bind_if_present(cpu, "torch_delete_list", s.delete_list);
    bind_if_present(cpu, "_ZN2at13globalContextEv", s.global_context);
    bind_if_present(cpu, "_ZN2at7Context18setAllowTF32CuBLASEb", s.set_allow_tf32_cublas);
    bind_if_present(cpu, "_ZNK2at7Context15allowTF32CuBLASEv", s.allow_tf32_cublas);
    s.dtype_f32 = constant(cpu, "aoti_torch_dtype_float32");
    s.dtype_f16 = constant(cpu, "aoti_torch_dtype_float16");
    s.dtype_bf16 = constant(cpu, "aoti_torch_dtype_bfloat16");
    s.dtype_bool = constant(cpu, "aoti_torch_dtype_bool");
    s.dtype_i64 = constant(cpu, "aoti_torch_dtype_int64");
    s.dtype_f64 = constant(cpu, "aoti_torch_dtype_float64");
    s.device_cpu = constant(cpu, "aoti_torch_device_type_cpu");
    s.device_cuda = constant(cpu, "aoti_torch_device_type_cuda");
    for (const char* name : {"float32", "float16", "bfloat16", "float64", "bool", "uint8", "int8", "int16", "int32",
                             "int64", "complex64", "complex128"}) {
        s.dtype_names.emplace_back(constant(cpu, ("aoti_torch_dtype_" + std::string(name)).c_str()), name);
    }
    void* cuda = dlopen("libtorch_cuda.so", RTLD_NOLOAD | RTLD_LAZY);
    if (cuda != nullptr) {
        s.current_cuda_stream =
            reinterpret_cast<int32_t (*)(int32_t, void**)>(dlsym(cuda, "aoti_torch_get_current_cuda_stream"));
    }
    return s;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
    std::vector<int64_t> strides(sizes.size());
    int64_t step = 1;
    for (size_t i = sizes.size(); i-- > 0;) {
        strides[i] = step;
        step *= std::max<int64_t>(sizes[i], 1);
    }
    return strides;
}

}  // namespace

const TorchShim& torch_shim() {
    static std::mutex mutex;
    static bool bound = false;
    static TorchShim shim;
    std::lock_guard<std::mutex> lock(mutex);
    if (!bound) {  // retried until it succeeds: DJL may load libtorch after this library
        shim = bind_shim();
        bound = true;
    }
    return shim;
}

Tensor::Tensor(TensorHandle handle, const char* name) : shim_(torch_shim()), name_(name), handle_(handle) {
    if (handle == nullptr) throw ArgumentError(std::string(name) + " is null");
    int64_t dim = 0;
    int64_t* sizes = nullptr;
    int64_t* strides = nullptr;
    check(shim_.get_dim(handle, &dim), "get_dim");
    check(shim_.get_sizes(handle, &sizes), "get_sizes");
    check(shim_.get_strides(handle, &strides), "get_strides");
    check(shim_.get_dtype(handle, &dtype_), "get_dtype");
    check(shim_.get_device_type(handle, &device_type_), "get_device_type");
    check(shim_.get_device_index(handle, &device_index_), "get_device_index");
    sizes_.assign(sizes, sizes + dim);
    strides_.assign(strides, strides + dim);
}

Tensor::~Tensor() {
    if (copy_ != nullptr) shim_.delete_tensor(copy_);
}

int64_t Tensor::numel() const {
    int64_t n = 1;
    for (int64_t s : sizes_) n *= s;
    return n;
}

std::string Tensor::device() const {
    if (device_type_ == shim_.device_cpu) return "cpu";
    if (device_type_ == shim_.device_cuda) return "cuda:" + std::to_string(device_index_);
    return "device type " + std::to_string(device_type_);
}

std::string Tensor::shape() const { return shape_string(sizes_); }

std::string Tensor::dtype_name() const {
    for (const auto& entry : shim_.dtype_names) {
        if (entry.first == dtype_) return entry.second;
    }
    return "dtype code " + std::to_string(dtype_);
}

bool Tensor::is_contiguous() const {
    int64_t step = 1;
    for (size_t i = sizes_.size(); i-- > 0;) {
        if (sizes_[i] != 1 && strides_[i] != step) return false;
        step *= sizes_[i];
    }
    return true;
}

void* Tensor::data_in_place() {
    if (!is_contiguous() && numel() > 0) {
        throw ArgumentError(std::string(name_) + " " + shape() + " must be contiguous to be updated in place");
    }
    return contiguous_data();
}

void* Tensor::contiguous_data() {
    TensorHandle h = handle_;
    if (!is_contiguous() && numel() > 0) {
        if (copy_ == nullptr) {
            copy_ = empty_tensor(sizes_, dtype_, device_type_, device_index_);
            check(shim_.copy(copy_, handle_, 0), "copy_");
        }
        h = copy_;
    }
    void* data = nullptr;
    check(shim_.get_data_ptr(h, &data), "get_data_ptr");
    return data;
}

std::string shape_string(const std::vector<int64_t>& sizes) {
    std::string out = "(";
    for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
    return out + (sizes.size() == 1 ? ",)" : ")");
}

TensorHandle empty_tensor(const std::vector<int64_t>& sizes, int32_t dtype, int32_t device_type,
                          int32_t device_index) {
    const std::vector<int64_t> strides = contiguous_strides(sizes);
    TensorHandle out = nullptr;
    check(torch_shim().empty_strided(static_cast<int64_t>(sizes.size()), sizes.data(), strides.data(), dtype,
                                     device_type, device_index, &out),
          "empty_strided");
    return out;
}

DispatcherCall::DispatcherCall() {
    const TorchShim& shim = torch_shim();
    if (shim.call_dispatcher == nullptr || shim.new_tensor_handle == nullptr) {
        throw RuntimeError("libtorch_cpu.so lacks aoti_torch_call_dispatcher or aoti_torch_new_tensor_handle");
    }
}

DispatcherCall::~DispatcherCall() {
    for (TensorHandle t : tensors_) torch_shim().delete_tensor(t);
    for (uint64_t* b : boxes_) delete b;
    for (void* l : lists_) torch_shim().delete_list(l);
}

std::string dispatcher_lists_missing() {
    const TorchShim& shim = torch_shim();
    if (shim.call_dispatcher == nullptr || shim.new_tensor_handle == nullptr) {
        return "libtorch_cpu.so lacks aoti_torch_call_dispatcher or aoti_torch_new_tensor_handle";
    }
    if (shim.new_list == nullptr || shim.list_push_back == nullptr || shim.delete_list == nullptr) {
        return "libtorch_cpu.so lacks torch_new_list_reserve_size (its dispatcher takes no list arguments; "
               "torch 2.11's does)";
    }
    return "";
}

void DispatcherCall::int_list(const std::vector<int64_t>& values) {
    const TorchShim& shim = torch_shim();
    if (shim.new_list == nullptr || shim.list_push_back == nullptr || shim.delete_list == nullptr) {
        throw RuntimeError(dispatcher_lists_missing());
    }
    void* list = nullptr;
    check(shim.new_list(values.size(), &list), "torch_new_list_reserve_size");
    lists_.push_back(list);
    for (int64_t v : values) {
        uint64_t bits = 0;
        std::memcpy(&bits, &v, sizeof v);
        check(shim.list_push_back(list, bits), "torch_list_push_back");
    }
    stack_.push_back(reinterpret_cast<uint64_t>(list));
}

void DispatcherCall::tensor(TensorHandle borrowed) {
    TensorHandle copy = nullptr;
    check(torch_shim().new_tensor_handle(borrowed, &copy), "new_tensor_handle");
    tensors_.push_back(copy);
    stack_.push_back(reinterpret_cast<uint64_t>(copy));
}

void DispatcherCall::optional_tensor(TensorHandle borrowed) {
    if (borrowed == nullptr) {
        stack_.push_back(0);
        return;
    }
    tensor(borrowed);
    stack_.back() = reinterpret_cast<uint64_t>(box(stack_.back()));
}

void DispatcherCall::f64(double value) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof value);
    stack_.push_back(bits);
}

void DispatcherCall::optional_f64(double value) {
    f64(value);
    stack_.back() = reinterpret_cast<uint64_t>(box(stack_.back()));
}

void DispatcherCall::boolean(bool value) { stack_.push_back(value ? 1 : 0); }

void DispatcherCall::i64(int64_t value) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof value);
    stack_.push_back(bits);
}

uint64_t* DispatcherCall::box(uint64_t value) {
    boxes_.push_back(new uint64_t(value));
    return boxes_.back();
}

TensorHandle DispatcherCall::call_returning_tensor(const char* op, const char* overload) {
    // Zeroed spare slots: a libtorch whose schema has more trailing arguments reads them as None/0/false rather
    // than past the end (CondjlOps checks the results of a probe call before it relies on the op).
    std::vector<uint64_t> slots = stack_;
    slots.resize(stack_.size() + 8, 0);
    // From here libtorch owns every tensor and box on the stack, whether or not the call succeeds.
    tensors_.clear();
    boxes_.clear();
    lists_.clear();
    if (torch_shim().call_dispatcher(op, overload, slots.data()) != 0) {
        throw RuntimeError(std::string("libtorch ") + op + " failed (its message is on stderr)");
    }
    return reinterpret_cast<TensorHandle>(slots[0]);
}

}  // namespace condjl
