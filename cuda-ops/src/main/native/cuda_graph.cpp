#include "cuda_graph.h"

#include <dlfcn.h>

#include <exception>
#include <mutex>
#include <utility>

#include "condjl_ops.h"
#include "torch_shim.h"

namespace condjl {
namespace {

using MempoolId = std::pair<unsigned long long, unsigned long long>;  // at::cuda::MempoolId_t
constexpr int kCaptureModeThreadLocal = 1;                          // cudaStreamCaptureModeThreadLocal

struct GraphSymbols {
    void (*construct_keep)(void*, bool) = nullptr;  // CUDAGraph(bool keep_graph), torch >= 2.8
    void (*construct)(void*) = nullptr;             // CUDAGraph(), earlier
    void (*destroy)(void*) = nullptr;
    void (*capture_begin)(void*, MempoolId, int) = nullptr;
    void (*capture_end)(void*) = nullptr;
    void (*replay)(void*) = nullptr;
    int32_t (*create_stream_guard)(void*, int32_t, void**) = nullptr;
    int32_t (*delete_stream_guard)(void*) = nullptr;
    std::string missing;
};

template <typename F>
void bind(void* lib, const char* symbol, F& fn, std::string& missing) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
    if (fn == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(symbol);
}

GraphSymbols bind_graph_symbols() {
    GraphSymbols s;
    void* cuda = dlopen("libtorch_cuda.so", RTLD_NOLOAD | RTLD_LAZY);
    if (cuda == nullptr) {
        s.missing = "libtorch_cuda.so is not loaded (a CPU-only libtorch, or DJL's PyTorch engine not started)";
        return s;
    }
    std::string missing;
    s.construct_keep = reinterpret_cast<void (*)(void*, bool)>(dlsym(cuda, "_ZN2at4cuda9CUDAGraphC1Eb"));
    if (s.construct_keep == nullptr) bind(cuda, "_ZN2at4cuda9CUDAGraphC1Ev", s.construct, missing);
    bind(cuda, "_ZN2at4cuda9CUDAGraphD1Ev", s.destroy, missing);
    bind(cuda, "_ZN2at4cuda9CUDAGraph13capture_beginESt4pairIyyE21cudaStreamCaptureMode", s.capture_begin, missing);
    bind(cuda, "_ZN2at4cuda9CUDAGraph11capture_endEv", s.capture_end, missing);
    bind(cuda, "_ZN2at4cuda9CUDAGraph6replayEv", s.replay, missing);
    bind(cuda, "aoti_torch_create_cuda_stream_guard", s.create_stream_guard, missing);
    bind(cuda, "aoti_torch_delete_cuda_stream_guard", s.delete_stream_guard, missing);
    if (!missing.empty()) s.missing = "libtorch_cuda.so lacks " + missing;
    return s;
}

const GraphSymbols& graph_symbols() {
    static std::mutex mutex;
    static bool bound = false;
    static GraphSymbols symbols;
    std::lock_guard<std::mutex> lock(mutex);
    if (!bound || !symbols.missing.empty()) {  // retried: DJL may load libtorch_cuda after a first question
        symbols = bind_graph_symbols();
        bound = true;
    }
    return symbols;
}

// Runs a libtorch call that may throw c10::Error (a std::exception), as a RuntimeError that says what failed.
template <typename F>
void torch_call(const char* what, F call) {
    try {
        call();
    } catch (const std::exception& e) {
        throw RuntimeError(std::string(what) + " failed: " + e.what());
    }
}

}  // namespace

std::string cuda_graph_missing() {
    if (!cuda_compiled()) return cuda_probe();
    return graph_symbols().missing;
}

CapturedGraph::CapturedGraph(int device) : device_(device) {
    const std::string missing = cuda_graph_missing();
    if (!missing.empty()) throw RuntimeError("CUDA graphs are unavailable: " + missing);
    const std::string reason = cuda_probe();
    if (!reason.empty()) throw RuntimeError("CUDA graphs are unavailable: " + reason);
    const GraphSymbols& s = graph_symbols();
    stream_ = cuda_stream_create(device);
    try {
        torch_call("at::cuda::CUDAGraph()", [&] {
            if (s.construct_keep != nullptr) {
                s.construct_keep(graph_, false);
            } else {
                s.construct(graph_);
            }
        });
    } catch (...) {  // the destructor does not run for an object whose constructor threw
        cuda_stream_destroy(stream_, device_);
        throw;
    }
    constructed_ = true;
}

CapturedGraph::~CapturedGraph() {
    if (capturing_) abandon_capture();
    if (guard_ != nullptr) {
        try {
            leave_stream();
        } catch (const std::exception&) {  // a destructor must not throw; the stream is dropped below anyway
        }
    }
    if (constructed_) {
        try {
            graph_symbols().destroy(graph_);
        } catch (const std::exception&) {
        }
    }
    if (stream_ != nullptr) cuda_stream_destroy(stream_, device_);
}

void CapturedGraph::enter_stream() {
    if (guard_ != nullptr) throw RuntimeError("the graph's stream is already current");
    const TorchShim& shim = torch_shim();
    if (shim.current_cuda_stream == nullptr || shim.current_cuda_stream(device_, &previous_stream_) != 0) {
        throw RuntimeError("libtorch could not report the current CUDA stream");
    }
    cuda_stream_wait(stream_, previous_stream_, device_);
    if (graph_symbols().create_stream_guard(stream_, device_, &guard_) != 0 || guard_ == nullptr) {
        guard_ = nullptr;
        throw RuntimeError("libtorch could not make the graph's stream current (aoti_torch_create_cuda_stream_guard)");
    }
}

void CapturedGraph::leave_stream() {
    if (guard_ == nullptr) return;
    void* guard = guard_;
    guard_ = nullptr;
    if (graph_symbols().delete_stream_guard(guard) != 0) {
        throw RuntimeError("libtorch could not restore the previous CUDA stream");
    }
    cuda_stream_wait(previous_stream_, stream_, device_);
}

void CapturedGraph::begin_capture() {
    if (guard_ == nullptr) throw RuntimeError("begin_capture before enter_stream");
    if (captured_ || capturing_) throw RuntimeError("this graph was already captured");
    torch_call("at::cuda::CUDAGraph::capture_begin", [&] {
        graph_symbols().capture_begin(graph_, MempoolId{0, 0}, kCaptureModeThreadLocal);
    });
    capturing_ = true;
}

void CapturedGraph::end_capture() {
    if (!capturing_) throw RuntimeError("end_capture without begin_capture");
    capturing_ = false;
    torch_call("at::cuda::CUDAGraph::capture_end", [&] { graph_symbols().capture_end(graph_); });
    captured_ = true;
}

void CapturedGraph::abandon_capture() noexcept {
    capturing_ = false;
    try {
        graph_symbols().capture_end(graph_);  // also hands the allocator's pool back; fails on an invalidated capture
    } catch (const std::exception&) {
    }
    try {
        cuda_stream_end_capture(stream_, device_);  // whatever capture the stream is still in
    } catch (const std::exception&) {
    }
    captured_ = false;
}

void CapturedGraph::replay() {
    if (!captured_) throw RuntimeError("replay of a graph that holds no capture");
    torch_call("at::cuda::CUDAGraph::replay", [&] { graph_symbols().replay(graph_); });
}

}  // namespace condjl
