// The JNI layer's error translation: C++ exceptions become IllegalArgumentException (bad input) or
// IllegalStateException (anything else), so that no exception crosses into the JVM.
#pragma once

#include <jni.h>

#include <exception>

#include "condjl_ops.h"

namespace condjl {

inline void throw_java(JNIEnv* env, const char* cls, const char* msg) {
    if (env->ExceptionCheck()) return;
    jclass c = env->FindClass(cls);
    if (c != nullptr) env->ThrowNew(c, msg);
}

// body(), or fallback with a pending Java exception when it threw.
template <typename R, typename F>
R guarded(JNIEnv* env, R fallback, F body) {
    try {
        return body();
    } catch (const ArgumentError& e) {
        throw_java(env, "java/lang/IllegalArgumentException", e.what());
    } catch (const std::exception& e) {
        throw_java(env, "java/lang/IllegalStateException", e.what());
    } catch (...) {
        throw_java(env, "java/lang/IllegalStateException", "unknown native error in libcondjl_ops");
    }
    return fallback;
}

}  // namespace condjl
