// JNI entry points of dev.condjl.cuda.CudaGraph: a handle is a CapturedGraph*, owned by the Java object.
#include <jni.h>

#include <cstdint>
#include <string>

#include "condjl_ops.h"
#include "cuda_graph.h"
#include "jni_guard.h"
#include "torch_shim.h"

using namespace condjl;

namespace {

CapturedGraph& graph(jlong handle) {
    if (handle == 0) throw ArgumentError("the CUDA graph is closed");
    return *reinterpret_cast<CapturedGraph*>(static_cast<intptr_t>(handle));
}

// Runs step on the graph behind handle, as a JNI call that throws a Java exception on failure.
template <typename F>
void on_graph(JNIEnv* env, jlong handle, F step) {
    guarded<int>(env, 0, [&] {
        step(graph(handle));
        return 0;
    });
}

}  // namespace

extern "C" {

JNIEXPORT jstring JNICALL Java_dev_condjl_cuda_CudaGraph_nMissing(JNIEnv* env, jclass) {
    return guarded<jstring>(env, nullptr, [&] { return env->NewStringUTF(cuda_graph_missing().c_str()); });
}

JNIEXPORT jlong JNICALL Java_dev_condjl_cuda_CudaGraph_nCreate(JNIEnv* env, jclass, jint device) {
    return guarded<jlong>(env, 0, [&] {
        if (device < 0) throw ArgumentError("CUDA device index must be >= 0, got " + std::to_string(device));
        return static_cast<jlong>(reinterpret_cast<intptr_t>(new CapturedGraph(device)));
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nEnterStream(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.enter_stream(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nBeginCapture(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.begin_capture(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nEndCapture(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.end_capture(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nAbandonCapture(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.abandon_capture(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nLeaveStream(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.leave_stream(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nReplay(JNIEnv* env, jclass, jlong h) {
    on_graph(env, h, [](CapturedGraph& g) { g.replay(); });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nCopyInPlace(JNIEnv* env, jclass, jlong target, jlong source) {
    guarded<int>(env, 0, [&] {
        if (target == 0 || source == 0) throw ArgumentError("target and source must be non-null");
        Tensor t(reinterpret_cast<TensorHandle>(static_cast<intptr_t>(target)), "target");
        Tensor s(reinterpret_cast<TensorHandle>(static_cast<intptr_t>(source)), "source");
        if (t.sizes() != s.sizes()) {
            throw ArgumentError("target " + t.shape() + " and source " + s.shape() + " must have the same shape");
        }
        if (t.dtype() != s.dtype()) {
            throw ArgumentError("target is " + t.dtype_name() + " but source is " + s.dtype_name());
        }
        if (torch_shim().copy(t.handle(), s.handle(), 0) != 0) throw RuntimeError("libtorch copy_ failed");
        return 0;
    });
}

JNIEXPORT void JNICALL Java_dev_condjl_cuda_CudaGraph_nDestroy(JNIEnv* env, jclass, jlong h) {
    guarded<int>(env, 0, [&] {
        delete &graph(h);
        return 0;
    });
}

}  // extern "C"
