// The order of condjl's tie-broken top-k (TieBreak.BY_INPUT), shared by the CPU twin and the CUDA kernel: an entry
// ranks by its score, then validity, then raw similarity, then the lower position; scores and similarities compare as
// floats with -0 == +0 and every NaN equal and above +inf (the order of the dense ranks that the DJL version packs).
#pragma once

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define CONDJL_HD __host__ __device__ __forceinline__
#else
#define CONDJL_HD inline
#endif

namespace condjl {

// An unsigned integer with the float order above: equal floats (in that sense) give equal keys.
CONDJL_HD uint32_t order_key(float v) {
    if (v != v) return 0xffffffffu;
    if (v == 0.0f) v = 0.0f;
#ifdef __CUDA_ARCH__
    const uint32_t bits = __float_as_uint(v);
#else
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
#endif
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

struct TieKey {
    uint32_t score;
    uint64_t second;  // valid << 32 | order_key(raw)
    int64_t index;
};

CONDJL_HD uint64_t second_key(bool valid, float raw) { return (static_cast<uint64_t>(valid) << 32) | order_key(raw); }

CONDJL_HD TieKey tie_key(float score, bool valid, float raw, int64_t index) {
    return TieKey{order_key(score), second_key(valid, raw), index};
}

// Whether a comes before b (keys of distinct positions are never equal).
CONDJL_HD bool ranks_before(const TieKey& a, const TieKey& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.second != b.second) return a.second > b.second;
    return a.index < b.index;
}

}  // namespace condjl
