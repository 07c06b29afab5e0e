// CPU twin of the CUDA kernels: one thread per block of rows, vectorisable inner loops (AVX2/FMA clone picked at
// load time by the dynamic linker, plain x86-64 otherwise). Same operation order as the reference coor_descent:
// z = (s + b) / e, a = e * (log k - lse(z)), b = -relu(s + a), y = exp(((s + a) + b) / e_final), all in float32
// except the row's sum of exponentials, accumulated in double: a float accumulator drops the many small terms of
// a long row, and the resulting error in a is amplified by 1 / e_final in the output (1e-4 at n = 32768).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "condjl_ops.h"

namespace condjl {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Scores at or below this count as masked, as in the CUDA kernels (their outputs are 0 either way).
constexpr float kMaskedBelow = -1e20f;

// exp(x) for x <= 0 (NaN propagates) to about 1 ulp, written so that the compiler vectorises it. Inputs below -87
// give ~1e-38 instead of the (sub)normal or zero result: harmless inside a sum of exponentials (the log-sum-exp is
// the only user), wrong for an output score (see exp_score).
inline float vexp(float x) {
    x = x < -87.0f ? -87.0f : x;
    // t = 1.5 * 2^23 + round(x log2 e): an integer-valued float whose low mantissa bits are that integer n
    const float t = x * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * __builtin_bit_cast(float, (__builtin_bit_cast(int32_t, t) + 127) << 23);  // p * 2^n
}

// The output scores' exp(x) for x <= 0 as torch.exp computes it: float32 results down through the subnormals to 0
// (torch.exp keeps subnormals; a clamp makes distinct tiny scores tie, and the top-k then picks other tokens).
// Evaluated in double (degree-12 Taylor polynomial on |r| <= ln2 / 2, relative error < 2^-51, exact scaling by 2^n)
// and rounded once to float, so it is the correctly rounded exp except within 2^-51 of a rounding midpoint; below
// ln(2^-150) the rounding gives 0. Written, like vexp, so that the compiler vectorises it.
inline float exp_score(float xf) {
    double x = xf < -200.0f ? -200.0 : static_cast<double>(xf);  // keeps 2^n normal in double; exp(-200) -> 0f
    // t = 1.5 * 2^52 + round(x log2 e): an integer-valued double whose low mantissa bits are that integer n
    const double t = x * 1.4426950408889634074 + 6755399441055744.0;
    const double n = t - 6755399441055744.0;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    const int64_t scale = (__builtin_bit_cast(int64_t, t) + 1023) << 52;  // 2^n
    return static_cast<float>(p * __builtin_bit_cast(double, scale));
}

// Runs body(row, scratch) for every row on up to max_threads threads (hardware threads when <= 0); small problems
// stay on the caller.
template <class Scratch, class Body>
void for_each_row(int64_t rows, int64_t n, int max_threads, Body body) {
    const int64_t work = rows * std::max<int64_t>(n, 1);
    const int64_t hw = max_threads > 0 ? max_threads : std::max(1u, std::thread::hardware_concurrency());
    const int threads = static_cast<int>(std::min({hw, rows, std::max<int64_t>(1, work / 8192)}));
    std::atomic<int64_t> next{0};
    auto worker = [&]() {
        Scratch scratch(n);
        for (int64_t r = next.fetch_add(1); r < rows; r = next.fetch_add(1)) body(r, scratch);
    };
    if (threads <= 1) {
        worker();
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
}

struct ForwardScratch {
    std::vector<float> s, z, y;
    explicit ForwardScratch(int64_t n) : s(n), z(n), y(n) {}
};

struct BackwardScratch {
    std::vector<float> y, g, out;
    explicit BackwardScratch(int64_t n) : y(n), g(n), out(n) {}
};

// s holds the row with masked entries set to -inf; writes the output row to y. With kFma, x / e is computed as in
// the CUDA kernel: from r = RN(1 / e), q = RN(x r), RN(q + (x - q e) r) = RN(x / e) (Markstein), cheaper than a
// vector division.
template <bool kFma>
__attribute__((always_inline)) inline void forward_row_impl(const float* __restrict s, int64_t n, float logk,
                                                            const EpsSchedule& eps, float* __restrict z,
                                                            float* __restrict y) {
    float a = 0.0f;
    double e = eps.start;
    for (int t = 0; t < eps.iters; ++t) {
        const float ef = static_cast<float>(e);
        float m = kNegInf;
        if (t == 0) {  // b = -s
#pragma omp simd reduction(max : m)
            for (int64_t i = 0; i < n; ++i) {
                const float zi = s[i] == kNegInf ? kNegInf : (s[i] + (-s[i])) / ef;
                z[i] = zi;
                m = std::max(m, zi);
            }
        } else {
            const float rcp = 1.0f / ef;
#pragma omp simd reduction(max : m)
            for (int64_t i = 0; i < n; ++i) {
                const float sa = s[i] + a;
                const float x = s[i] + -(sa > 0.0f ? sa : 0.0f);
                float q;
                if constexpr (kFma) {
                    q = x * rcp;
                    q = __builtin_fmaf(__builtin_fmaf(-q, ef, x), rcp, q);
                } else {
                    q = x / ef;
                }
                const float zi = s[i] == kNegInf ? kNegInf : q;
                z[i] = zi;
                m = std::max(m, zi);
            }
        }
        if (m == kNegInf) {  // fully masked row: the output is 0 whatever a is
            a = std::numeric_limits<float>::infinity();
        } else {
            // Float partial sums over blocks of 256 (32 terms per vector lane), accumulated in double.
            double sum = 0.0;
            for (int64_t i0 = 0; i0 < n; i0 += 256) {
                const int64_t i1 = std::min<int64_t>(n, i0 + 256);
                float block = 0.0f;
#pragma omp simd reduction(+ : block)
                for (int64_t i = i0; i < i1; ++i) block += vexp(z[i] - m);
                sum += block;
            }
            const float lse = m + std::log(static_cast<float>(sum));
            a = ef * (logk - lse);
        }
        e = std::max(e * eps.decay, eps.floor);
    }
    const float ef = static_cast<float>(e);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const float sa = s[i] + a;
        const float b = -(sa > 0.0f ? sa : 0.0f);
        const float v = exp_score((sa + b) / ef);
        y[i] = s[i] == kNegInf ? 0.0f : v;
    }
}

__attribute__((target("arch=x86-64-v3"))) void forward_row_v3(const float* s, int64_t n, float logk,
                                                              const EpsSchedule& eps, float* z, float* y) {
    forward_row_impl<true>(s, n, logk, eps, z, y);
}

void forward_row_base(const float* s, int64_t n, float logk, const EpsSchedule& eps, float* z, float* y) {
    forward_row_impl<false>(s, n, logk, eps, z, y);
}

void forward_row(const float* s, int64_t n, float logk, const EpsSchedule& eps, float* z, float* y) {
    static const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    (v3 ? forward_row_v3 : forward_row_base)(s, n, logk, eps, z, y);
}

__attribute__((target_clones("arch=x86-64-v3", "default")))
void backward_row(const float* __restrict y, const float* __restrict g, int64_t n, float eps,
                  float* __restrict out) {
    float sgw = 0.0f, sw = 0.0f;
#pragma omp simd reduction(+ : sgw, sw)
    for (int64_t i = 0; i < n; ++i) {
        const float w = y[i] < 1.0f ? y[i] : 0.0f;
        sgw += g[i] * w;
        sw += w;
    }
    const float r = sw > 0.0f ? sgw / sw : 0.0f;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const float w = y[i] < 1.0f ? y[i] : 0.0f;
        out[i] = (w / eps) * (g[i] - r);
    }
}

void load_row(const void* src, DType dtype, int64_t offset, int64_t n, float* dst) {
    if (dtype == DType::F32) {
        std::memcpy(dst, static_cast<const float*>(src) + offset, n * sizeof(float));
    } else {
        const uint16_t* h = static_cast<const uint16_t*>(src) + offset;
        for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(h[i]);
    }
}

void store_row(const float* src, int64_t n, DType dtype, int64_t offset, void* dst) {
    if (dtype == DType::F32) {
        std::memcpy(static_cast<float*>(dst) + offset, src, n * sizeof(float));
    } else {
        uint16_t* h = static_cast<uint16_t*>(dst) + offset;
        for (int64_t i = 0; i < n; ++i) h[i] = float_to_half(src[i]);
    }
}

double eps_final(const EpsSchedule& eps) {
    double e = eps.start;
    for (int t = 0; t < eps.iters; ++t) e = std::max(e * eps.decay, eps.floor);
    return e;
}

}  // namespace

uint16_t float_to_half(float f) {  // round to nearest even
    uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0);
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow
    if (ax < 0x38800000u) {                        // half subnormal or zero
        if (ax < 0x33000000u) return sign;
        // h = f / 2^-24 = mant >> (126 - exponent): shift + 1 bits go, the highest of them decides the rounding
        const uint32_t shift = 125 - (ax >> 23);
        const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t h = mant >> (shift + 1);
        const uint32_t rest = mant & ((1u << (shift + 1)) - 1);
        const uint32_t half = 1u << shift;
        if (rest > half || (rest == half && (h & 1u))) ++h;
        return sign | static_cast<uint16_t>(h);
    }
    uint32_t h = ((ax >> 13) - (112u << 10));
    const uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return sign | static_cast<uint16_t>(h);
}

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal half: normalise
        exp = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --exp;
        }
        bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

void cd_forward_cpu(const CdForward& p, int threads) {
    for_each_row<ForwardScratch>(p.rows, p.n, threads, [&](int64_t row, ForwardScratch& sc) {
        const int64_t off = row * p.n;
        float* s = sc.s.data();
        load_row(p.s, p.dtype, off, p.n, s);
        if (p.mask != nullptr) {
            const uint8_t* m = p.mask + off;
            for (int64_t i = 0; i < p.n; ++i) s[i] = m[i] ? s[i] : kNegInf;
        }
        for (int64_t i = 0; i < p.n; ++i) s[i] = s[i] <= kMaskedBelow ? kNegInf : s[i];
        const float logk = p.logk != nullptr ? p.logk[row * p.logk_stride] : p.logk_scalar;
        forward_row(s, p.n, logk, p.eps, sc.z.data(), sc.y.data());
        store_row(sc.y.data(), p.n, p.dtype, off, p.out);
        if (p.weights != nullptr) {
            float* q = sc.z.data();
            const float ef = static_cast<float>(eps_final(p.eps));
            for (int64_t i = 0; i < p.n; ++i) q[i] = sc.y[i] < 1.0f ? sc.y[i] / ef : 0.0f;
            store_row(q, p.n, p.dtype, off, p.weights);
            if (p.shares != nullptr) {
                // from q as stored, summed in double; the floor is the dtype's smallest positive number
                load_row(p.weights, p.dtype, off, p.n, q);
                double total = 0.0;
                for (int64_t i = 0; i < p.n; ++i) total += q[i];
                const float denom = std::max(static_cast<float>(total),
                                             p.dtype == DType::F16 ? kSmallestPositiveF16 : kSmallestPositiveF32);
                for (int64_t i = 0; i < p.n; ++i) q[i] /= denom;
                store_row(q, p.n, p.dtype, off, p.shares);
            }
        }
    });
}

void cd_backward_cpu(const CdBackward& p, int threads) {
    for_each_row<BackwardScratch>(p.rows, p.n, threads, [&](int64_t row, BackwardScratch& sc) {
        const int64_t off = row * p.n;
        load_row(p.y, p.dtype, off, p.n, sc.y.data());
        load_row(p.g, p.dtype, off, p.n, sc.g.data());
        backward_row(sc.y.data(), sc.g.data(), p.n, p.eps_final, sc.out.data());
        store_row(sc.out.data(), p.n, p.dtype, off, p.out);
    });
}

}  // namespace condjl
