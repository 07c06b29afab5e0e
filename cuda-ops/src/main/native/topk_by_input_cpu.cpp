// CPU twin of the tie-broken top-k (tie_break_key.h): a partial sort of each row's positions.
#include <algorithm>
#include <numeric>
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
float to_float<uint16_t>(const uint16_t* p, int64_t i) {  // IEEE half to float, exactly
    const uint32_t h = p[i];
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1fu) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal half: normalise
        exp = 113;
        while ((man & 0x400u) == 0) {
            man <<= 1;
            --exp;
        }
        bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

template <typename T>
void rows_cpu(const TopKByInput& p) {
    const T* scores = static_cast<const T*>(p.scores);
    const T* raw = static_cast<const T*>(p.raw);
    std::vector<TieKey> keys(static_cast<size_t>(p.n));
    std::vector<int64_t> order(static_cast<size_t>(p.n));
    for (int64_t r = 0; r < p.rows; ++r) {
        const int64_t base = r * p.n;
        for (int64_t j = 0; j < p.n; ++j) {
            keys[j] = tie_key(to_float(scores, base + j), p.mask == nullptr || p.mask[base + j] != 0,
                              to_float(raw, base + j), j);
        }
        std::iota(order.begin(), order.end(), int64_t{0});
        std::partial_sort(order.begin(), order.begin() + p.k, order.end(),
                          [&](int64_t a, int64_t b) { return ranks_before(keys[a], keys[b]); });
        std::copy(order.begin(), order.begin() + p.k, p.indices + r * p.k);
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
