// CPU twin of the tie-broken top-k (tie_break_key.h): per row, the k best keys by nth_element (O(n)), then sorted
// (O(k log k)).
#include <algorithm>
#include <vector>

#include "condjl_ops.h"
#include "tie_break_key.h"

namespace condjl {
namespace {

template <typename T>
float to_float(const T* p, int64_t i);
template <>
float to_float<float>(const float* p, int64_t i) {
    return p[i];
}
template <>
float to_float<uint16_t>(const uint16_t* p, int64_t i) {
    return half_to_float(p[i]);
}

// float to T, rounded to nearest even, and T back to float
template <typename T>
T from_float(float v);
template <>
float from_float<float>(float v) {
    return v;
}
template <>
uint16_t from_float<uint16_t>(float v) {
    return float_to_half(v);
}
template <typename T>
float to_float_of(T v) {
    return to_float(&v, 0);
}

template <typename T>
void rows_cpu(const TopKByInput& p) {
    const T* scores = static_cast<const T*>(p.scores);
    const T* raw = static_cast<const T*>(p.raw);
    std::vector<TieKey> keys(static_cast<size_t>(p.n));
    const auto before = [](const TieKey& a, const TieKey& b) { return ranks_before(a, b); };
    for (int64_t r = 0; r < p.rows; ++r) {
        const int64_t base = r * p.n;
        for (int64_t j = 0; j < p.n; ++j) {
            keys[j] = tie_key(to_float(scores, base + j), p.mask == nullptr || p.mask[base + j] != 0,
                              to_float(raw, base + j), j);
        }
        const auto kth = keys.begin() + p.k;
        if (p.k < p.n) std::nth_element(keys.begin(), kth - 1, keys.end(), before);
        std::sort(keys.begin(), kth, before);
        int64_t* indices = p.indices + r * p.k;
        for (int64_t j = 0; j < p.k; ++j) indices[j] = keys[j].index;
        if (p.gates != nullptr) {
            T* gates = static_cast<T*>(p.gates) + r * p.k;
            for (int64_t j = 0; j < p.k; ++j) {
                const float y = to_float(scores, base + indices[j]);
                gates[j] = from_float<T>(y + to_float_of<T>(from_float<T>(1.0f - y)));
            }
        }
    }
}

}  // namespace

void topk_by_input_cpu(const TopKByInput& p) {
    if (p.dtype == DType::F32) {
        rows_cpu<float>(p);
    } else {
        rows_cpu<uint16_t>(p);
    }
}

}  // namespace condjl
