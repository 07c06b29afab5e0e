// JNI entry points of dev.condjl.cuda.CondjlOps and OptimizerOps. Every argument is validated before a data pointer
// is touched; C++ exceptions become IllegalArgumentException (bad input) or IllegalStateException (anything else).
#include <jni.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "condjl_ops.h"
#include "jni_guard.h"
#include "torch_shim.h"

using namespace condjl;

namespace {

template <typename T>
T* ptr(jlong address) {
    return reinterpret_cast<T*>(static_cast<intptr_t>(address));
}

DType dtype_of(jint code) {
    if (code == 0) return DType::F32;
    if (code == 1) return DType::F16;
    throw ArgumentError("dtype code must be 0 (float32) or 1 (float16), got " + std::to_string(code));
}

EpsSchedule schedule(jint iters, jdouble start, jdouble decay, jdouble floor) {
    if (iters <= 0) throw ArgumentError("nIters must be > 0, got " + std::to_string(iters));
    if (!(start > 0) || !(floor > 0) || !(decay > 0)) {
        throw ArgumentError("eps, epsInit and epsDecay must be > 0, got eps=" + std::to_string(floor) +
                            " start=" + std::to_string(start) + " decay=" + std::to_string(decay));
    }
    return EpsSchedule{iters, start, decay, floor};
}

void check_raw_shape(jlong rows, jlong n) {
    if (rows < 0 || n < 0) {
        throw ArgumentError("rows and n must be >= 0, got rows=" + std::to_string(rows) + " n=" + std::to_string(n));
    }
}

LaunchOverride launch_override(jint blocks, jint threads, jint mode) {
    LaunchOverride ov;
    ov.blocks_per_row = blocks;
    ov.threads = threads;
    ov.mode = mode;
    return ov;
}

bool same_device(const Tensor& a, const Tensor& b) {
    return a.device_type() == b.device_type() && a.device_index() == b.device_index();
}

void check_device(const Tensor& s, const Tensor& other) {
    if (!same_device(s, other)) {
        throw ArgumentError(std::string(other.name()) + " is on " + other.device() + " but " + s.name() + " is on " +
                            s.device());
    }
}

// Checks s's dtype and device; returns its dtype.
DType check_scores(const Tensor& s) {
    const TorchShim& shim = torch_shim();
    if (s.sizes().empty()) throw ArgumentError(std::string(s.name()) + " must have at least 1 dimension, got a scalar");
    if (s.dtype() != shim.dtype_f32 && s.dtype() != shim.dtype_f16) {
        throw ArgumentError(std::string(s.name()) + " must be float32 or float16, got " + s.dtype_name());
    }
    if (s.device_type() != shim.device_cpu && s.device_type() != shim.device_cuda) {
        throw ArgumentError(std::string(s.name()) + " must be on the CPU or a CUDA device, got " + s.device());
    }
    return s.dtype() == shim.dtype_f32 ? DType::F32 : DType::F16;
}

// libtorch's current CUDA stream of a tensor's device, after checking that the CUDA kernels can run.
void* cuda_stream_of(const Tensor& t) {
    const std::string reason = cuda_probe();
    if (!reason.empty()) throw RuntimeError("the CUDA kernels are unavailable: " + reason);
    const TorchShim& shim = torch_shim();
    void* stream = nullptr;
    if (shim.current_cuda_stream != nullptr && shim.current_cuda_stream(t.device_index(), &stream) != 0) {
        throw RuntimeError("libtorch could not report the current CUDA stream");
    }
    return stream;
}

// Runs on s's device: the CPU kernels on up to cpu_threads threads, or the CUDA kernels on libtorch's current stream.
template <typename P, typename Cpu, typename Cuda>
void dispatch(const Tensor& s, const P& problem, int cpu_threads, Cpu cpu, Cuda cuda) {
    if (s.device_type() == torch_shim().device_cpu) {
        cpu(problem, cpu_threads);
        return;
    }
    cuda(problem, s.device_index(), cuda_stream_of(s), LaunchOverride{});
}

float log_k(jfloat k) {
    if (!(k > 0) || std::isinf(k)) throw ArgumentError("k must be a finite number > 0, got " + std::to_string(k));
    return std::log(std::max(k, 1e-20f));
}

// A tensor allocated for a result, shaped and placed like `like`: deleted unless released to Java (DJL owns it).
class Output {
   public:
    explicit Output(const Tensor& like) : Output(like, like.sizes(), like.dtype()) {}
    // On like's device, with its own sizes and dtype.
    Output(const Tensor& like, const std::vector<int64_t>& sizes, int32_t dtype)
        : handle_(empty_tensor(sizes, dtype, like.device_type(), like.device_index())) {}
    // Takes ownership of a tensor that libtorch returned (an intermediate result).
    explicit Output(TensorHandle owned) : handle_(owned) {}
    ~Output() {
        if (handle_ != nullptr) torch_shim().delete_tensor(handle_);
    }
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;

    TensorHandle handle() const { return handle_; }
    void* data() {
        void* d = nullptr;
        if (torch_shim().get_data_ptr(handle_, &d) != 0) throw RuntimeError("libtorch get_data_ptr failed");
        return d;
    }
    jlong release() {
        TensorHandle h = handle_;
        handle_ = nullptr;
        return reinterpret_cast<jlong>(h);
    }

   private:
    TensorHandle handle_;
};

jlongArray handles(JNIEnv* env, std::initializer_list<Output*> outputs) {
    jlongArray array = env->NewLongArray(static_cast<jsize>(outputs.size()));
    if (array == nullptr) throw RuntimeError("out of Java memory");
    jsize i = 0;
    for (Output* o : outputs) {
        const jlong h = o->release();
        env->SetLongArrayRegion(array, i++, 1, &h);
    }
    return array;
}

// logk_handle: a float32 tensor of one value, or one per row (shape s.shape[:-1], optionally with a trailing 1);
// 0 to use ln(max(k, 1e-20)) for every row. Returns y, and when asked for the implicit-gradient weights q and their
// shares p = q / max(sum q, smallest positive) per row.
jlongArray forward(JNIEnv* env, jlong s_handle, jlong mask_handle, jlong logk_handle, jfloat k, EpsSchedule eps,
                   bool with_weights, int cpu_threads) {
    Tensor s(ptr<void>(s_handle), "s");
    const DType dtype = check_scores(s);
    const std::vector<int64_t>& sizes = s.sizes();
    const int64_t n = sizes.back();
    const int64_t rows = n == 0 ? 0 : s.numel() / n;
    CdForward p{rows, n, dtype, nullptr, nullptr, nullptr, 0, 0.0f, eps, nullptr, nullptr, nullptr};
    std::unique_ptr<Tensor> mask;
    std::unique_ptr<Tensor> logk;
    const TorchShim& shim = torch_shim();
    if (mask_handle != 0) {
        mask = std::make_unique<Tensor>(ptr<void>(mask_handle), "mask");
        if (mask->sizes() != sizes) {
            throw ArgumentError("mask shape " + mask->shape() + " must equal s shape " + s.shape());
        }
        if (mask->dtype() != shim.dtype_bool) throw ArgumentError("mask must be bool, got " + mask->dtype_name());
        check_device(s, *mask);
    }
    if (logk_handle != 0) {
        logk = std::make_unique<Tensor>(ptr<void>(logk_handle), "logk");
        std::vector<int64_t> row_shape(sizes.begin(), sizes.end() - 1);
        std::vector<int64_t> with_unit = row_shape;
        with_unit.push_back(1);
        if (logk->numel() == 1) {
            p.logk_stride = 0;
        } else if (logk->sizes() == row_shape || logk->sizes() == with_unit) {
            p.logk_stride = 1;
        } else {
            throw ArgumentError("logk must hold one value, or one per row with shape " + shape_string(row_shape) +
                                " or " + shape_string(with_unit) + " for s " + s.shape() + ", got " + logk->shape());
        }
        if (logk->dtype() != shim.dtype_f32) throw ArgumentError("logk must be float32, got " + logk->dtype_name());
        check_device(s, *logk);
    } else {
        p.logk_scalar = log_k(k);
    }
    Output out(s);
    std::unique_ptr<Output> weights = with_weights ? std::make_unique<Output>(s) : nullptr;
    std::unique_ptr<Output> shares = with_weights ? std::make_unique<Output>(s) : nullptr;
    p.s = s.contiguous_data();
    p.mask = mask ? static_cast<const uint8_t*>(mask->contiguous_data()) : nullptr;
    p.logk = logk ? static_cast<const float*>(logk->contiguous_data()) : nullptr;
    p.out = out.data();
    p.weights = weights ? weights->data() : nullptr;
    p.shares = shares ? shares->data() : nullptr;
    dispatch(s, p, cpu_threads, cd_forward_cpu, cd_forward_cuda);
    return weights ? handles(env, {&out, weights.get(), shares.get()}) : handles(env, {&out});
}

jlong backward(jlong y_handle, jlong g_handle, jfloat eps, int cpu_threads) {
    Tensor y(ptr<void>(y_handle), "y");
    Tensor g(ptr<void>(g_handle), "grad");
    const DType dtype = check_scores(y);
    if (g.sizes() != y.sizes()) throw ArgumentError("grad shape " + g.shape() + " must equal y shape " + y.shape());
    if (g.dtype() != y.dtype()) {
        throw ArgumentError("grad dtype " + g.dtype_name() + " must equal y dtype " + y.dtype_name());
    }
    check_device(y, g);
    if (!(eps > 0)) throw ArgumentError("epsFinal must be > 0, got " + std::to_string(eps));
    const int64_t n = y.sizes().back();
    const int64_t rows = n == 0 ? 0 : y.numel() / n;
    Output out(y);
    CdBackward p{rows, n, dtype, y.contiguous_data(), g.contiguous_data(), eps, out.data()};
    dispatch(y, p, cpu_threads, cd_backward_cpu, cd_backward_cuda);
    return out.release();
}

// indices (..., k) int64 of the tie-broken top-k (tie_break_key.h) of scores (..., n), with raw of the same shape
// and dtype and an optional bool mask of that shape; with gates also the straight-through values y + (1 - y) of the
// selected scores, (..., k) of their dtype.
jlongArray topk_by_input(JNIEnv* env, jlong scores_handle, jlong raw_handle, jlong mask_handle, jlong k,
                         bool with_gates) {
    Tensor scores(ptr<void>(scores_handle), "scores");
    Tensor raw(ptr<void>(raw_handle), "raw");
    const DType dtype = check_scores(scores);
    const TorchShim& shim = torch_shim();
    if (raw.sizes() != scores.sizes() || raw.dtype() != scores.dtype()) {
        throw ArgumentError("raw " + raw.dtype_name() + " " + raw.shape() + " must have the dtype and shape of scores " +
                            scores.dtype_name() + " " + scores.shape());
    }
    check_device(scores, raw);
    std::unique_ptr<Tensor> mask;
    if (mask_handle != 0) {
        mask = std::make_unique<Tensor>(ptr<void>(mask_handle), "mask");
        if (mask->sizes() != scores.sizes() || mask->dtype() != shim.dtype_bool) {
            throw ArgumentError("mask " + mask->dtype_name() + " " + mask->shape() + " must be bool with shape " +
                                scores.shape());
        }
        check_device(scores, *mask);
    }
    const int64_t n = scores.sizes().back();
    if (k < 1 || k > n) throw ArgumentError("k (" + std::to_string(k) + ") must be in [1, " + std::to_string(n) + "]");
    const int64_t rows = scores.numel() / n;
    const bool on_cpu = scores.device_type() == shim.device_cpu;
    void* stream = on_cpu ? nullptr : cuda_stream_of(scores);
    const int64_t scratch_bytes = on_cpu ? 0 : topk_by_input_scratch(rows, n, k, scores.device_index());
    std::vector<int64_t> out_sizes = scores.sizes();
    out_sizes.back() = k;
    Output out(scores, out_sizes, shim.dtype_i64);
    std::unique_ptr<Output> gates = with_gates ? std::make_unique<Output>(scores, out_sizes, scores.dtype()) : nullptr;
    // from libtorch's caching allocator, freed on return: it hands the memory out again only to work queued later on
    // the current stream, where the launch is
    const std::vector<int64_t> scratch_sizes{(scratch_bytes + 7) / 8};
    std::unique_ptr<Output> scratch =
        scratch_bytes > 0 ? std::make_unique<Output>(scores, scratch_sizes, shim.dtype_i64) : nullptr;
    const TopKByInput p{rows, n, k, dtype, scores.contiguous_data(), raw.contiguous_data(),
                        mask ? static_cast<const uint8_t*>(mask->contiguous_data()) : nullptr,
                        static_cast<int64_t*>(out.data()), gates ? gates->data() : nullptr};
    if (on_cpu) {
        topk_by_input_cpu(p);
    } else {
        topk_by_input_cuda(p, scratch ? scratch->data() : nullptr, scores.device_index(), stream);
    }
    return gates ? handles(env, {&out, gates.get()}) : handles(env, {&out});
}

// Checks that t is a float32 tensor on the CPU or a CUDA device, on like's device.
void check_float32(const Tensor& t, const Tensor& like) {
    const TorchShim& shim = torch_shim();
    if (t.dtype() != shim.dtype_f32) {
        throw ArgumentError(std::string(t.name()) + " must be float32, got " + t.dtype_name());
    }
    if (t.device_type() != shim.device_cpu && t.device_type() != shim.device_cuda) {
        throw ArgumentError(std::string(t.name()) + " must be on the CPU or a CUDA device, got " + t.device());
    }
    check_device(like, t);
}

// One parameter's Adam/AdamW tensors, checked: all float32 of weight's shape and device; weight, mean and variance
// (and grad when the step zeroes it) contiguous, and weight, mean and variance distinct. fill() points a step at them.
class AdamTensors {
   public:
    AdamTensors(jlong weight, jlong grad, jlong mean, jlong variance, bool zero_grad)
        : weight_(ptr<void>(weight), "weight"),
          grad_(ptr<void>(grad), "grad"),
          mean_(ptr<void>(mean), "mean"),
          variance_(ptr<void>(variance), "variance"),
          zero_grad_(zero_grad) {
        for (const Tensor* t : {&weight_, &grad_, &mean_, &variance_}) {
            check_float32(*t, weight_);
            if (t->sizes() != weight_.sizes()) {
                throw ArgumentError(std::string(t->name()) + " shape " + t->shape() + " must equal weight shape " +
                                    weight_.shape());
            }
        }
        float* w = static_cast<float*>(weight_.data_in_place());
        float* m = static_cast<float*>(mean_.data_in_place());
        float* v = static_cast<float*>(variance_.data_in_place());
        if (weight_.numel() > 0 && (w == m || w == v || m == v)) {
            throw ArgumentError("weight, mean and variance must be distinct tensors");
        }
        if (zero_grad_) {
            // the step writes the gradient too: it must not be one of the tensors it updates
            const float* g = static_cast<const float*>(grad_.data_in_place());
            if (weight_.numel() > 0 && (g == w || g == m || g == v)) {
                throw ArgumentError("a gradient that is zeroed must be distinct from weight, mean and variance");
            }
        }
    }
    const Tensor& weight() const { return weight_; }
    void fill(AdamStep& p) {
        p.n = weight_.numel();
        p.weight = static_cast<float*>(weight_.data_in_place());
        p.mean = static_cast<float*>(mean_.data_in_place());
        p.variance = static_cast<float*>(variance_.data_in_place());
        // read-only without zero_grad: a non-contiguous gradient is read through a contiguous copy
        p.grad = static_cast<float*>(zero_grad_ ? grad_.data_in_place() : grad_.contiguous_data());
        p.zero_grad = zero_grad_;
    }

   private:
    Tensor weight_;
    Tensor grad_;
    Tensor mean_;
    Tensor variance_;
    bool zero_grad_;
};

void adam_step(const Tensor& like, const AdamStep& p, int cpu_threads) {
    dispatch(like, p, cpu_threads, adam_step_cpu,
             [](const AdamStep& q, int device, void* stream, const LaunchOverride&) {
                 adam_step_cuda(q, device, stream);
             });
}

// One Adam/AdamW step in place on weight, mean and variance (see AdamTensors); grad is only read.
void adam_update(jlong weight_handle, jlong grad_handle, jlong mean_handle, jlong variance_handle, AdamStep p,
                 int cpu_threads) {
    AdamTensors tensors(weight_handle, grad_handle, mean_handle, variance_handle, false);
    tensors.fill(p);
    adam_step(tensors.weight(), p, cpu_threads);
}

// A step with the scalars every parameter shares; the rates and the tensors are set by the caller.
AdamStep adam_scalars(float weight_decay, float rescale_grad, float clip_grad, float beta1, float beta2, float eps,
                      jboolean adamw) {
    AdamStep p{};
    p.weight_decay = weight_decay;
    p.rescale_grad = rescale_grad;
    p.clip_grad = clip_grad;
    p.beta1 = beta1;
    p.beta2 = beta2;
    p.eps = eps;
    p.adamw = adamw == JNI_TRUE;
    return p;
}

// The elements of a Java array (none for null).
std::vector<jlong> elements(JNIEnv* env, jlongArray values) {
    std::vector<jlong> out(values == nullptr ? 0 : static_cast<size_t>(env->GetArrayLength(values)));
    if (!out.empty()) env->GetLongArrayRegion(values, 0, static_cast<jsize>(out.size()), out.data());
    return out;
}

std::vector<jfloat> elements(JNIEnv* env, jfloatArray values) {
    std::vector<jfloat> out(values == nullptr ? 0 : static_cast<size_t>(env->GetArrayLength(values)));
    if (!out.empty()) env->GetFloatArrayRegion(values, 0, static_cast<jsize>(out.size()), out.data());
    return out;
}

// The Adam/AdamW step of every parameter i of the lists, at its own rates lr[i] and lr_bias_corrected[i] and the
// shared scalars of p, each gradient zeroed once read when zero_grads. Every parameter is checked before any is
// written; all must be on one device.
void adam_update_all(JNIEnv* env, jlongArray weights, jlongArray grads, jlongArray means, jlongArray variances,
                     jfloatArray lrs, jfloatArray lrs_bias_corrected, AdamStep p, bool zero_grads,
                     int cpu_threads) {
    if (weights == nullptr || grads == nullptr || means == nullptr || variances == nullptr || lrs == nullptr ||
        lrs_bias_corrected == nullptr) {
        throw ArgumentError("the weight, gradient, moment and rate arrays must be non-null");
    }
    const std::vector<jlong> w = elements(env, weights), g = elements(env, grads), m = elements(env, means),
                             v = elements(env, variances);
    const std::vector<jfloat> lr = elements(env, lrs), lr_bc = elements(env, lrs_bias_corrected);
    const size_t n = w.size();
    for (size_t size : {g.size(), m.size(), v.size(), lr.size(), lr_bc.size()}) {
        if (size != n) {
            throw ArgumentError("the weight, gradient, moment and rate arrays must have one entry per parameter (" +
                                std::to_string(n) + "), got " + std::to_string(size));
        }
    }
    if (n == 0) throw ArgumentError("the parameter list must not be empty");
    std::vector<std::unique_ptr<AdamTensors>> params;
    for (size_t i = 0; i < n; ++i) {
        try {
            if (w[i] == 0 || g[i] == 0 || m[i] == 0 || v[i] == 0) throw ArgumentError("a tensor is null");
            params.push_back(std::make_unique<AdamTensors>(w[i], g[i], m[i], v[i], zero_grads));
            check_device(params.front()->weight(), params.back()->weight());
        } catch (const ArgumentError& e) {
            throw ArgumentError("parameter " + std::to_string(i) + ": " + e.what());
        }
    }
    for (size_t i = 0; i < n; ++i) {
        AdamStep step = p;
        step.lr = lr[i];
        step.lr_bias_corrected = lr_bc[i];
        params[i]->fill(step);
        adam_step(params[i]->weight(), step, cpu_threads);
    }
}

// The float32 tensors of a Java handle array, all on the first one's device; in place: each must be contiguous.
class Float32List {
   public:
    Float32List(JNIEnv* env, jlongArray handles, bool in_place) {
        const std::vector<jlong> h = elements(env, handles);
        if (h.empty()) throw ArgumentError("the tensor list must not be empty");
        for (size_t i = 0; i < h.size(); ++i) {
            if (h[i] == 0) throw ArgumentError("tensor " + std::to_string(i) + " of the list is null");
            tensors_.push_back(std::make_unique<Tensor>(ptr<void>(h[i]), "a list tensor"));
            Tensor& t = *tensors_.back();
            try {
                check_float32(t, *tensors_.front());
            } catch (const ArgumentError& e) {
                throw ArgumentError("tensor " + std::to_string(i) + " of the list: " + e.what());
            }
            if (in_place && !t.is_contiguous() && t.numel() > 0) {
                throw ArgumentError("tensor " + std::to_string(i) + " of the list " + t.shape() +
                                    " must be contiguous to be updated in place");
            }
            list_.data.push_back(static_cast<float*>(t.contiguous_data()));
            list_.numel.push_back(t.numel());
        }
    }
    const Tensor& first() const { return *tensors_.front(); }
    const TensorList& list() const { return list_; }
    bool on_cpu() const { return first().device_type() == torch_shim().device_cpu; }

   private:
    std::vector<std::unique_ptr<Tensor>> tensors_;
    TensorList list_;
};

// A 0-dim float64 tensor on the tensors' device: Σ over the list of Σ x².
jlong sum_of_squares(JNIEnv* env, jlongArray handles) {
    Float32List tensors(env, handles, false);
    Output out(tensors.first(), {}, torch_shim().dtype_f64);
    if (tensors.on_cpu()) {
        *static_cast<double*>(out.data()) = sum_of_squares_cpu(tensors.list());
    } else {
        void* stream = cuda_stream_of(tensors.first());
        Output scratch(tensors.first(), {std::max<int64_t>(1, sum_of_squares_scratch(tensors.list()))},
                       torch_shim().dtype_f64);
        sum_of_squares_cuda(tensors.list(), static_cast<double*>(scratch.data()), static_cast<double*>(out.data()),
                            tensors.first().device_index(), stream);
    }
    return out.release();
}

void scale_in_place(JNIEnv* env, jlongArray handles, jfloat factor, int cpu_threads) {
    Float32List tensors(env, handles, true);
    if (tensors.on_cpu()) {
        scale_cpu(tensors.list(), factor, cpu_threads);
    } else {
        scale_cuda(tensors.list(), factor, tensors.first().device_index(), cuda_stream_of(tensors.first()));
    }
}

// aten::scaled_dot_product_attention(query, key, value, attn_mask=bias, dropout_p=0.0, is_causal=False, *,
// scale=scale, enable_gqa=False) through the dispatcher, so that autograd records it.
TensorHandle sdpa(TensorHandle q, TensorHandle k, TensorHandle v, TensorHandle bias, double scale) {
    DispatcherCall call;
    call.tensor(q);
    call.tensor(k);
    call.tensor(v);
    call.optional_tensor(bias);
    call.f64(0.0);
    call.boolean(false);
    call.optional_f64(scale);
    call.boolean(false);
    return call.call_returning_tensor("aten::scaled_dot_product_attention", "");
}

// aten::type_as(self=x, other=like): x in like's dtype, an op that autograd records (its gradient converts back).
TensorHandle type_as(TensorHandle x, TensorHandle like) {
    DispatcherCall call;
    call.tensor(x);
    call.tensor(like);
    return call.call_returning_tensor("aten::type_as", "");
}

// aten::nan_to_num(self=x, nan=NaN, posinf=+inf, neginf=lowest): only -inf changes.
TensorHandle finite_below(TensorHandle x, double lowest) {
    DispatcherCall call;
    call.tensor(x);
    call.optional_f64(std::nan(""));
    call.optional_f64(INFINITY);
    call.optional_f64(lowest);
    return call.call_returning_tensor("aten::nan_to_num", "");
}

// Attention in the operands' dtype (precision 0), or from float16 (1) or bfloat16 (2) copies of q, k, v and bias
// with the result converted back to q's dtype: four more ops that autograd records (two more for a bias), and the
// reduced-precision kernels (flash attention on a GPU). The bias's -inf (what -FLT_MAX rounds to) becomes the reduced
// dtype's lowest finite value, so a masked logit stays finite as in float32. k, v or a bias already in the reduced
// dtype are taken as they are (such a bias must be finite). Shapes, dtypes and devices are checked in Java;
// libtorch checks them again and fails with an error code, never touching bad memory.
jlong scaled_dot_product_attention(jlong q, jlong k, jlong v, jlong bias, jdouble scale, jint precision) {
    if (q == 0 || k == 0 || v == 0) throw ArgumentError("q, k and v must be non-null");
    if (precision == 0) {
        return reinterpret_cast<jlong>(sdpa(ptr<void>(q), ptr<void>(k), ptr<void>(v), ptr<void>(bias), scale));
    }
    const TorchShim& shim = torch_shim();
    int32_t dtype = 0;
    double lowest = 0;
    if (precision == 1) {
        dtype = shim.dtype_f16;
        lowest = -65504.0;
    } else if (precision == 2) {
        dtype = shim.dtype_bf16;
        lowest = -3.3895313892515355e38;
    } else {
        throw ArgumentError("precision must be 0 (input), 1 (float16) or 2 (bfloat16), got " +
                            std::to_string(precision));
    }
    const Tensor tq(ptr<void>(q), "q");
    const Output like(tq, {0}, dtype);
    // operands already in the reduced dtype come back as they are, without a copy
    const Output rq(type_as(ptr<void>(q), like.handle()));
    const Output rk(type_as(ptr<void>(k), like.handle()));
    const Output rv(type_as(ptr<void>(v), like.handle()));
    std::unique_ptr<Output> rbias;
    if (bias != 0 && Tensor(ptr<void>(bias), "bias").dtype() == dtype) {
        rbias = std::make_unique<Output>(type_as(ptr<void>(bias), like.handle()));
    } else if (bias != 0) {
        const Output cast(type_as(ptr<void>(bias), like.handle()));
        rbias = std::make_unique<Output>(finite_below(cast.handle(), lowest));
    }
    const Output out(sdpa(rq.handle(), rk.handle(), rv.handle(), rbias ? rbias->handle() : nullptr, scale));
    return reinterpret_cast<jlong>(type_as(out.handle(), ptr<void>(q)));
}

// aten::rms_norm(input, normalized_shape=[d], weight, eps) through the dispatcher, over x's last axis d: one op and
// one autograd node where libtorch has a fused kernel (torch 2.11 on CUDA, measured). The Java side checks dtypes
// and devices; shapes are checked here as well, and libtorch checks everything again.
jlong rms_norm(jlong x, jlong weight, jdouble eps) {
    if (x == 0) throw ArgumentError("x must be non-null");
    Tensor tx(ptr<void>(x), "x");
    if (tx.sizes().empty()) throw ArgumentError("x must have at least one dimension, got " + tx.shape());
    const int64_t d = tx.sizes().back();
    if (weight != 0) {
        Tensor tw(ptr<void>(weight), "weight");
        if (tw.sizes().size() != 1 || tw.sizes()[0] != d) {
            throw ArgumentError("weight " + tw.shape() + " must be (" + std::to_string(d) + ",) for x " + tx.shape());
        }
    }
    DispatcherCall call;
    call.tensor(ptr<void>(x));
    call.int_list({d});
    call.optional_tensor(ptr<void>(weight));
    call.optional_f64(eps);
    return reinterpret_cast<jlong>(call.call_returning_tensor("aten::rms_norm", ""));
}

// aten::linear(input, weight, bias) through the dispatcher, so that autograd records it. Shapes, dtypes and devices
// are checked in Java; libtorch checks them again and fails with an error code, never touching bad memory.
jlong linear(jlong x, jlong weight, jlong bias) {
    if (x == 0 || weight == 0) throw ArgumentError("x and weight must be non-null");
    DispatcherCall call;
    call.tensor(ptr<void>(x));
    call.tensor(ptr<void>(weight));
    call.optional_tensor(ptr<void>(bias));
    return reinterpret_cast<jlong>(call.call_returning_tensor("aten::linear", ""));
}

// aten::scatter_add(self=base, dim, index, src=values) through the dispatcher, so that autograd records it. Shapes,
// dtypes and devices are checked in Java; ranks and the axis again here; libtorch checks everything once more (index
// values too, on the CPU with an exception, on a GPU inside the kernel, as for any aten gather or scatter; either way
// only the fresh output is written).
jlong scatter_add(jlong base, jint axis, jlong index, jlong values) {
    if (base == 0 || index == 0 || values == 0) throw ArgumentError("base, index and values must be non-null");
    Tensor tb(ptr<void>(base), "base");
    Tensor ti(ptr<void>(index), "index");
    Tensor tv(ptr<void>(values), "values");
    const int64_t rank = static_cast<int64_t>(tb.sizes().size());
    if (ti.sizes() != tv.sizes() || static_cast<int64_t>(ti.sizes().size()) != rank) {
        throw ArgumentError("index " + ti.shape() + " and values " + tv.shape() + " must have one shape, of base " +
                            tb.shape() + "'s rank");
    }
    if (axis < 0 || axis >= rank) {
        throw ArgumentError("axis " + std::to_string(axis) + " is out of range for base " + tb.shape());
    }
    DispatcherCall call;
    call.tensor(ptr<void>(base));
    call.i64(axis);
    call.tensor(ptr<void>(index));
    call.tensor(ptr<void>(values));
    return reinterpret_cast<jlong>(call.call_returning_tensor("aten::scatter_add", ""));
}

// aten::unfold(self=x, dimension=axis, size, step) through the dispatcher: a view that autograd records. Arguments
// are checked in Java and again here; libtorch checks them once more.
jlong unfold(jlong x, jint axis, jlong size, jlong step) {
    if (x == 0) throw ArgumentError("x must be non-null");
    Tensor tx(ptr<void>(x), "x");
    const int64_t rank = static_cast<int64_t>(tx.sizes().size());
    if (axis < 0 || axis >= rank) {
        throw ArgumentError("axis " + std::to_string(axis) + " is out of range for x " + tx.shape());
    }
    if (size < 1 || size > tx.sizes()[axis] || step < 1) {
        throw ArgumentError("windows of " + std::to_string(size) + " every " + std::to_string(step) +
                            " do not fit axis " + std::to_string(axis) + " of x " + tx.shape());
    }
    DispatcherCall call;
    call.tensor(ptr<void>(x));
    call.i64(axis);
    call.i64(size);
    call.i64(step);
    return reinterpret_cast<jlong>(call.call_returning_tensor("aten::unfold", ""));
}

// x (..., ) of an integer or boolean dtype as a view (..., trailing...) with stride 0 on the new axes: what
// x.unsqueeze(-1)...expand(...) gives, made here without an op. The view has no autograd history, so only arrays
// that cannot require a gradient are taken.
jlong broadcast_trailing(JNIEnv* env, jlong x, jlongArray trailing) {
    if (x == 0) throw ArgumentError("x must be non-null");
    if (trailing == nullptr) throw ArgumentError("the trailing sizes must be non-null");
    const TorchShim& shim = torch_shim();
    if (shim.reinterpret_tensor == nullptr) throw RuntimeError("libtorch_cpu.so lacks aoti_torch__reinterpret_tensor");
    Tensor tx(ptr<void>(x), "x");
    if (tx.dtype() != shim.dtype_i64 && tx.dtype() != shim.dtype_bool) {
        throw ArgumentError("x must be int64 or boolean (the view carries no gradient), got " + tx.dtype_name());
    }
    std::vector<int64_t> sizes = tx.sizes();
    std::vector<int64_t> strides = tx.strides();
    for (jlong size : elements(env, trailing)) {
        if (size < 0) throw ArgumentError("trailing sizes must be >= 0, got " + std::to_string(size));
        sizes.push_back(size);
        strides.push_back(0);
    }
    TensorHandle out = nullptr;
    if (shim.reinterpret_tensor(tx.handle(), static_cast<int64_t>(sizes.size()), sizes.data(), strides.data(), 0,
                                &out) != 0) {
        throw RuntimeError("libtorch aoti_torch__reinterpret_tensor failed");
    }
    return reinterpret_cast<jlong>(out);
}

// The shim's TF32 switch, or RuntimeError naming what this libtorch lacks.
const TorchShim& tf32_switch() {
    const TorchShim& shim = torch_shim();
    if (shim.global_context == nullptr || shim.set_allow_tf32_cublas == nullptr || shim.allow_tf32_cublas == nullptr) {
        throw RuntimeError("this libtorch does not export at::Context::setAllowTF32CuBLAS and allowTF32CuBLAS");
    }
    return shim;
}

}  // namespace

// x as float32 (dtype 0) or float16 (1) by aten::type_as, which autograd records (its gradient converts back).
jlong cast(jlong x, jint dtype) {
    if (x == 0) throw ArgumentError("x must be non-null");
    const TorchShim& shim = torch_shim();
    if (dtype != 0 && dtype != 1) {
        throw ArgumentError("dtype must be 0 (float32) or 1 (float16), got " + std::to_string(dtype));
    }
    const Tensor tx(ptr<void>(x), "x");
    const Output like(tx, {0}, dtype == 0 ? shim.dtype_f32 : shim.dtype_f16);
    return reinterpret_cast<jlong>(type_as(ptr<void>(x), like.handle()));
}

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nCast(JNIEnv* env, jclass, jlong x, jint dtype) {
    return guarded<jlong>(env, 0, [&] { return cast(x, dtype); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nScaledDotProductAttention(JNIEnv* env, jclass, jlong q,
                                                                                  jlong k, jlong v, jlong bias,
                                                                                  jdouble scale, jint precision) {
    return guarded<jlong>(env, 0, [&] { return scaled_dot_product_attention(q, k, v, bias, scale, precision); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_OptimizerOps_nAdamUpdate(JNIEnv* env, jclass, jlong weight, jlong grad,
                                                                   jlong mean, jlong variance, jfloat lr,
                                                                   jfloat lr_bias_corrected, jfloat weight_decay,
                                                                   jfloat rescale_grad, jfloat clip_grad,
                                                                   jfloat beta1, jfloat beta2, jfloat eps,
                                                                   jboolean adamw, jint cpu_threads) {
    guarded<int>(env, 0, [&] {
        AdamStep p = adam_scalars(weight_decay, rescale_grad, clip_grad, beta1, beta2, eps, adamw);
        p.lr = lr;
        p.lr_bias_corrected = lr_bias_corrected;
        adam_update(weight, grad, mean, variance, p, cpu_threads);
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_OptimizerOps_nAdamUpdateAll(
    JNIEnv* env, jclass, jlongArray weights, jlongArray grads, jlongArray means, jlongArray variances, jfloatArray lrs,
    jfloatArray lrs_bias_corrected, jfloat weight_decay, jfloat rescale_grad, jfloat clip_grad, jfloat beta1,
    jfloat beta2, jfloat eps, jboolean adamw, jboolean zero_grads, jint cpu_threads) {
    guarded<int>(env, 0, [&] {
        AdamStep p = adam_scalars(weight_decay, rescale_grad, clip_grad, beta1, beta2, eps, adamw);
        adam_update_all(env, weights, grads, means, variances, lrs, lrs_bias_corrected, p, zero_grads == JNI_TRUE,
                        cpu_threads);
        return 0;
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_OptimizerOps_nSumOfSquares(JNIEnv* env, jclass, jlongArray handles) {
    return guarded<jlong>(env, 0, [&] { return sum_of_squares(env, handles); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_OptimizerOps_nScaleInPlace(JNIEnv* env, jclass, jlongArray handles,
                                                                    jfloat factor, jint cpu_threads) {
    guarded<int>(env, 0, [&] {
        scale_in_place(env, handles, factor, cpu_threads);
        return 0;
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_FusedLinear_nLinear(JNIEnv* env, jclass, jlong x, jlong weight,
                                                                 jlong bias) {
    return guarded<jlong>(env, 0, [&] { return linear(x, weight, bias); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_ScatterAdd_nScatterAdd(JNIEnv* env, jclass, jlong base, jint axis,
                                                                   jlong index, jlong values) {
    return guarded<jlong>(env, 0, [&] { return scatter_add(base, axis, index, values); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_Unfold_nUnfold(JNIEnv* env, jclass, jlong x, jint axis, jlong size,
                                                           jlong step) {
    return guarded<jlong>(env, 0, [&] { return unfold(x, axis, size, step); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_IndexViews_nBroadcastTrailing(JNIEnv* env, jclass, jlong x,
                                                                          jlongArray trailing) {
    return guarded<jlong>(env, 0, [&] { return broadcast_trailing(env, x, trailing); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_FusedNorm_nRmsNorm(JNIEnv* env, jclass, jlong x, jlong weight,
                                                                 jdouble eps) {
    return guarded<jlong>(env, 0, [&] { return rms_norm(x, weight, eps); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_MatrixProducts_nSetTf32(JNIEnv* env, jclass, jboolean allow) {
    guarded<int>(env, 0, [&] {
        const TorchShim& shim = tf32_switch();
        shim.set_allow_tf32_cublas(shim.global_context(), allow == JNI_TRUE);
        return 0;
    });
}

JNIEXPORT jboolean JNICALL Java_dev_condjl_cuda_MatrixProducts_nTf32(JNIEnv* env, jclass) {
    return guarded<jboolean>(env, JNI_FALSE, [&] {
        const TorchShim& shim = tf32_switch();
        return shim.allow_tf32_cublas(shim.global_context()) ? JNI_TRUE : JNI_FALSE;
    });
}

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_FusedNorm_nListsMissing(JNIEnv* env, jclass) {
    return guarded<jstring>(env, nullptr, [&] { return env->NewStringUTF(dispatcher_lists_missing().c_str()); });
}

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_CondjlOps_nDispatcherMissing(JNIEnv* env, jclass) {
    return guarded<jstring>(env, nullptr, [&] {
        std::string missing;
        try {
            DispatcherCall call;
        } catch (const RuntimeError& e) {
            missing = e.what();
        }
        return env->NewStringUTF(missing.c_str());
    });
}

JNIEXPORT jlongArray JNICALL Java_dev_condjl_cuda_CondjlOps_nForward(JNIEnv* env, jclass, jlong s, jlong mask,
                                                                     jlong logk, jfloat k, jint iters, jdouble start,
                                                                     jdouble decay, jdouble floor,
                                                                     jboolean weights, jint cpu_threads) {
    return guarded<jlongArray>(env, nullptr, [&] {
        return forward(env, s, mask, logk, k, schedule(iters, start, decay, floor), weights == JNI_TRUE,
                       cpu_threads);
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nBackward(JNIEnv* env, jclass, jlong y, jlong g, jfloat eps,
                                                                 jint cpu_threads) {
    return guarded<jlong>(env, 0, [&] { return backward(y, g, eps, cpu_threads); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nForwardRaw(JNIEnv* env, jclass, jboolean cuda, jlong s,
                                                                  jlong mask, jlong logk, jfloat k, jlong rows,
                                                                  jlong n, jint dtype, jint iters, jdouble start,
                                                                  jdouble decay, jdouble floor, jlong out,
                                                                  jlong weights, jlong stream, jint blocks,
                                                                  jint threads, jint mode) {
    guarded<int>(env, 0, [&] {
        check_raw_shape(rows, n);
        const CdForward p{rows, n, dtype_of(dtype), ptr<const void>(s), ptr<const uint8_t>(mask),
                          ptr<const float>(logk), 1, logk == 0 ? log_k(k) : 0.0f,
                          schedule(iters, start, decay, floor), ptr<void>(out), ptr<void>(weights), nullptr};
        if (rows * n > 0 && (p.s == nullptr || p.out == nullptr)) throw ArgumentError("s and out must be non-null");
        if (cuda) {
            cd_forward_cuda(p, -1, ptr<void>(stream), launch_override(blocks, threads, mode));
        } else {
            cd_forward_cpu(p, 0);
        }
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nBackwardRaw(JNIEnv* env, jclass, jboolean cuda, jlong y,
                                                                   jlong g, jlong out, jlong rows, jlong n,
                                                                   jint dtype, jfloat eps, jlong stream, jint blocks,
                                                                   jint threads, jint mode) {
    guarded<int>(env, 0, [&] {
        check_raw_shape(rows, n);
        if (!(eps > 0)) throw ArgumentError("epsFinal must be > 0, got " + std::to_string(eps));
        const CdBackward p{rows, n, dtype_of(dtype), ptr<const void>(y), ptr<const void>(g), eps, ptr<void>(out)};
        if (rows * n > 0 && (p.y == nullptr || p.g == nullptr || p.out == nullptr)) {
            throw ArgumentError("y, grad and out must be non-null");
        }
        if (cuda) {
            cd_backward_cuda(p, -1, ptr<void>(stream), launch_override(blocks, threads, mode));
        } else {
            cd_backward_cpu(p, 0);
        }
        return 0;
    });
}

JNIEXPORT jlongArray JNICALL Java_dev_condjl_cuda_CondjlOps_nTopKByInput(JNIEnv* env, jclass, jlong scores,
                                                                         jlong raw, jlong mask, jlong k,
                                                                         jboolean gates) {
    return guarded<jlongArray>(env, nullptr,
                               [&] { return topk_by_input(env, scores, raw, mask, k, gates == JNI_TRUE); });
}

JNIEXPORT jboolean JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaCompiled(JNIEnv*, jclass) {
    return cuda_compiled() ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaProbe(JNIEnv* env, jclass) {
    return guarded<jstring>(env, nullptr, [&] { return env->NewStringUTF(cuda_probe().c_str()); });
}

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_CondjlOps_nDescribeLaunch(JNIEnv* env, jclass, jlong rows, jlong n,
                                                                         jboolean backward, jint blocks,
                                                                         jint threads, jint mode) {
    return guarded<jstring>(env, nullptr, [&] {
        check_raw_shape(rows, n);
        const std::string d = cuda_describe_launch(rows, n, backward, -1, launch_override(blocks, threads, mode));
        return env->NewStringUTF(d.c_str());
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nAddress(JNIEnv* env, jclass, jobject buffer) {
    return guarded<jlong>(env, 0, [&] {
        void* p = buffer == nullptr ? nullptr : env->GetDirectBufferAddress(buffer);
        if (p == nullptr) throw ArgumentError("buffer must be a direct ByteBuffer");
        return reinterpret_cast<jlong>(p);
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaMalloc(JNIEnv* env, jclass, jlong bytes) {
    return guarded<jlong>(env, 0, [&] { return reinterpret_cast<jlong>(cuda_malloc(bytes)); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaFree(JNIEnv* env, jclass, jlong p) {
    guarded<int>(env, 0, [&] {
        cuda_free(ptr<void>(p));
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaMemcpy(JNIEnv* env, jclass, jlong dst, jlong src,
                                                                  jlong bytes) {
    guarded<int>(env, 0, [&] {
        cuda_memcpy(ptr<void>(dst), ptr<const void>(src), bytes);
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaMemset(JNIEnv* env, jclass, jlong dst, jint value,
                                                                  jlong bytes) {
    guarded<int>(env, 0, [&] {
        cuda_memset(ptr<void>(dst), value, bytes);
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaSynchronize(JNIEnv* env, jclass) {
    guarded<int>(env, 0, [&] {
        cuda_synchronize();
        return 0;
    });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nEventCreate(JNIEnv* env, jclass) {
    return guarded<jlong>(env, 0, [&] { return reinterpret_cast<jlong>(cuda_event_create()); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nEventRecord(JNIEnv* env, jclass, jlong event, jlong stream) {
    guarded<int>(env, 0, [&] {
        cuda_event_record(ptr<void>(event), ptr<void>(stream));
        return 0;
    });
}

JNIEXPORT jfloat JNICALL Java_dev_condjl_cuda_CondjlOps_nEventElapsedMs(JNIEnv* env, jclass, jlong start, jlong end) {
    return guarded<jfloat>(env, 0.0f, [&] { return cuda_event_elapsed_ms(ptr<void>(start), ptr<void>(end)); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CondjlOps_nEventDestroy(JNIEnv* env, jclass, jlong event) {
    guarded<int>(env, 0, [&] {
        cuda_event_destroy(ptr<void>(event));
        return 0;
    });
}

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_CondjlOps_nDeviceName(JNIEnv* env, jclass) {
    return guarded<jstring>(env, nullptr, [&] { return env->NewStringUTF(cuda_device_name().c_str()); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CondjlOps_nCudaMemoryUsed(JNIEnv* env, jclass) {
    return guarded<jlong>(env, 0, [&] { return static_cast<jlong>(cuda_memory_used()); });
}

}  // extern "C"
