// CUDA graphs of libtorch work: libtorch_cuda's at::cuda::CUDAGraph (a C++ class, bound at run time by its Itanium
// symbols, so that this library still needs no libtorch headers), captured on a stream of this library made
// libtorch's current stream through the C shim's stream guard. The graph's allocations come from a private pool of
// libtorch's caching allocator, which CUDAGraph reserves for it until it is destroyed.
#pragma once

#include <string>

namespace condjl {

// Empty when libtorch_cuda is loaded and exports what CapturedGraph calls, else what is missing.
std::string cuda_graph_missing();

// One graph on one device. Every member runs on the thread that created it: libtorch's current stream is per thread.
class CapturedGraph {
   public:
    // Throws RuntimeError where cuda_graph_missing() is not empty or the stream cannot be made.
    explicit CapturedGraph(int device);
    ~CapturedGraph();
    CapturedGraph(const CapturedGraph&) = delete;
    CapturedGraph& operator=(const CapturedGraph&) = delete;

    // Makes the graph's stream libtorch's current one on this thread, after the work queued so far on the previous one.
    void enter_stream();
    // Starts recording the current stream's work (enter_stream first).
    void begin_capture();
    // Stops recording and instantiates the graph.
    void end_capture();
    // After a failure between begin_capture and end_capture: ends the capture, drops what was recorded. Never throws.
    void abandon_capture() noexcept;
    // Back to the previous stream, which then waits for the graph stream's work.
    void leave_stream();
    // Launches the graph on libtorch's current stream of this thread.
    void replay();

   private:
    int device_;
    void* stream_ = nullptr;
    void* previous_stream_ = nullptr;
    void* guard_ = nullptr;
    alignas(16) unsigned char graph_[1024];  // an at::cuda::CUDAGraph (104 bytes in torch 2.11)
    bool constructed_ = false;
    bool capturing_ = false;
    bool captured_ = false;
};

}  // namespace condjl
