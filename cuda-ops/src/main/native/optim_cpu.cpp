// CPU kernels of the optimizer helpers: the Adam/AdamW step, and the sum of squares and scaling of gradient lists.
#include <algorithm>
#include <thread>
#include <vector>

#include "adam_step.h"
#include "condjl_ops.h"

namespace condjl {
namespace {

// Runs body(begin, end) over [0, n) in up to max_threads contiguous chunks; small problems stay on this thread.
template <class Body>
void for_each_chunk(int64_t n, int max_threads, Body body) {
    constexpr int64_t kChunk = 1 << 16;
    const int64_t hw = max_threads > 0 ? max_threads : std::max(1u, std::thread::hardware_concurrency());
    const int threads = static_cast<int>(std::min<int64_t>(hw, std::max<int64_t>(1, n / kChunk)));
    if (threads <= 1) {
        body(0, n);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    const int64_t per = (n + threads - 1) / threads;
    for (int t = 1; t < threads; ++t) {
        const int64_t begin = std::min(n, t * per);
        pool.emplace_back([=] { body(begin, std::min(n, begin + per)); });
    }
    body(0, std::min(n, per));
    for (auto& t : pool) t.join();
}

}  // namespace

void adam_step_cpu(const AdamStep& p, int threads) {
    for_each_chunk(p.n, threads, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) adam_element(p, i);
    });
}

double sum_of_squares_cpu(const TensorList& t) {
    double total = 0;
    for (size_t k = 0; k < t.data.size(); ++k) {
        const float* x = t.data[k];
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < t.numel[k]; ++i) sum += static_cast<double>(x[i]) * x[i];
        total += sum;
    }
    return total;
}

void scale_cpu(const TensorList& t, float factor, int threads) {
    for (size_t k = 0; k < t.data.size(); ++k) {
        float* x = t.data[k];
        for_each_chunk(t.numel[k], threads, [&](int64_t begin, int64_t end) {
#pragma omp simd
            for (int64_t i = begin; i < end; ++i) x[i] *= factor;
        });
    }
}

}  // namespace condjl
