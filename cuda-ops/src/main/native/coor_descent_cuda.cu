// CUDA kernels of coordinate descent: every iteration in one launch, each row held in registers by a group of G
// blocks that combine their log-sum-exp partials once per iteration, through distributed shared memory when the
// group is a thread-block cluster (sm_90, G <= 16) or through global memory and a grid barrier (cooperative launch)
// for longer rows. Elements beyond what the registers hold are re-read every iteration, so no row is too long.
//
// Numerics follow the reference's float32 operation order (z = (s + b) / e correctly rounded, via a reciprocal and
// one FMA correction instead of a full IEEE division; lse = max + log sum; a = e * (log k - lse)), with the
// exponentials summed over a tree (the CPU twin sums in double) so that long rows lose no small terms.
// Only the log-sum-exp uses the flushing approximations (ex2.approx.ftz, __expf): a sum loses nothing to them. The
// output scores (y_of) are IEEE division and the math library's expf, built without -use_fast_math or -ftz=true
// (build.sh): they underflow through the subnormals to 0 exactly as torch.exp does on a CUDA tensor.
#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "condjl_ops.h"
#include "cuda_common.cuh"

namespace cg = cooperative_groups;

namespace condjl {
namespace {

constexpr int kModeAuto = 0;
constexpr int kModeBlock = 1;
constexpr int kModeCluster = 2;
constexpr int kModeGrid = 3;
constexpr int kMaxClusterBlocks = 16;
constexpr int kMaxGridBlocks = 8192;
constexpr int kMaxGridGroup = 128;  // blocks per row the planner uses at most
constexpr unsigned kFull = 0xffffffffu;

// Per-block partials of the grid mode, double-buffered by reduction parity.
__device__ float2 g_partials[2][kMaxGridBlocks];

// The smallest positive T: the floor of a positive sum of q.
__device__ __forceinline__ float smallest_positive(const float*) { return kSmallestPositiveF32; }
__device__ __forceinline__ float smallest_positive(const __half*) { return kSmallestPositiveF16; }

// Warp maximum in one REDUX instruction: floats mapped to ints of the same order (negative ones mirrored).
__device__ __forceinline__ float warp_max(float v) {
    const int i = __float_as_int(v);
    const int m = __reduce_max_sync(kFull, i >= 0 ? i : i ^ 0x7fffffff);
    return __int_as_float(m >= 0 ? m : m ^ 0x7fffffff);
}

// Sum over each group of `width` lanes (a power of two); every lane of a group gets its group's sum.
__device__ __forceinline__ float group_sum(float v, int width = 32) {
    for (int o = width >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
    return v;
}

__device__ __forceinline__ float warp_sum(float v) { return group_sum(v); }

__device__ __forceinline__ int pow2_at_least(int v) { return v <= 1 ? 1 : 1 << (32 - __clz(v - 1)); }

// (m, S) with S = sum exp(z - m): the state of a streaming log-sum-exp.
struct MaxSumExp {
    // Combines count pairs load(0..count-1); every lane of the warp gets the same result. Up to 32 pairs, each
    // group of pow2(count) lanes holds all of them, so the sum needs only log2(count) shuffle rounds.
    template <class Load>
    __device__ static float2 reduce(Load load, int count) {
        const int lane = threadIdx.x & 31;
        if (count <= 32) {
            const int width = pow2_at_least(count);
            const int j = lane & (width - 1);
            const float2 v = j < count ? load(j) : make_float2(-INFINITY, 0.0f);
            const float m = warp_max(v.x);
            const float s = v.x == -INFINITY ? 0.0f : v.y * __expf(v.x - m);
            return make_float2(m, group_sum(s, width));
        }
        float m = -INFINITY;
        for (int j = lane; j < count; j += 32) m = fmaxf(m, load(j).x);
        m = warp_max(m);
        float s = 0.0f;
        for (int j = lane; j < count; j += 32) {
            const float2 v = load(j);
            if (v.x != -INFINITY) s += v.y * __expf(v.x - m);
        }
        return make_float2(m, warp_sum(s));
    }
};

// Two independent sums.
struct SumSum {
    template <class Load>
    __device__ static float2 reduce(Load load, int count) {
        const int lane = threadIdx.x & 31;
        if (count <= 32) {
            const int width = pow2_at_least(count);
            const int j = lane & (width - 1);
            const float2 v = j < count ? load(j) : make_float2(0.0f, 0.0f);
            return make_float2(group_sum(v.x, width), group_sum(v.y, width));
        }
        float2 v = make_float2(0.0f, 0.0f);
        for (int j = lane; j < count; j += 32) {
            const float2 u = load(j);
            v.x += u.x;
            v.y += u.y;
        }
        return make_float2(warp_sum(v.x), warp_sum(v.y));
    }
};

// How a row is spread over blocks; shared by both kernels.
struct Layout {
    int64_t rows;
    int64_t n;
    int64_t chunk;  // elements per block: ceil(n / G)
    int G;          // blocks per row
    int mode;
};

// This block's share [lo, hi) of row `row`. In grid mode blocks loop over rows in rounds; a block whose group has
// no row left in the last round is inactive (empty share) but still joins the grid barriers.
struct Slice {
    int64_t row;
    int64_t lo;
    int64_t hi;
    int64_t base;
};

__device__ __forceinline__ Slice slice_of(const Layout& L, int64_t round) {
    const int part = blockIdx.x % L.G;
    const int64_t groups = gridDim.x / L.G;
    Slice sl;
    sl.row = blockIdx.x / L.G + round * groups;
    sl.lo = min(L.n, static_cast<int64_t>(part) * L.chunk);
    sl.hi = sl.row < L.rows ? min(L.n, sl.lo + L.chunk) : sl.lo;
    sl.base = sl.row * L.n;
    return sl;
}

__device__ __forceinline__ int64_t rounds_of(const Layout& L) {
    const int64_t groups = gridDim.x / L.G;
    return L.mode == kModeGrid ? (L.rows + groups - 1) / groups : 1;
}

// Combines a per-warp value (identical in all lanes) over the whole row; every thread of every block of the row
// gets the same result (all merge the same values in the same order). `phase` counts the calls and picks the
// buffer half, so one barrier per call suffices: a block writes a half again only after the next call's barrier,
// which every reader of the previous call has passed.
template <class Op>
__device__ float2 row_reduce(float2 warp_value, const Layout& L, int& phase) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    const int p = phase & 1;
    ++phase;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (L.mode == kModeCluster) {
        // Each warp pushes its pair into slot (rank, warp) of every block of the cluster; after one cluster barrier
        // every block holds all G * warps pairs in its own shared memory. Nothing touches a peer after the last
        // barrier, so blocks may exit without another one.
        __shared__ float2 slots[2][kMaxClusterBlocks * 32];
        cg::cluster_group cluster = cg::this_cluster();
        if (lane < L.G) {
            *cluster.map_shared_rank(&slots[p][cluster.block_rank() * warps + warp], lane) = warp_value;
        }
        cluster.sync();
        return Op::reduce([&](int j) { return slots[p][j]; }, L.G * warps);
    }
#endif
    __shared__ float2 warp_parts[2][32];
    if (lane == 0) warp_parts[p][warp] = warp_value;
    __syncthreads();
    const float2 v = Op::reduce([&](int j) { return warp_parts[p][j]; }, warps);
    if (L.G == 1) return v;
    if (threadIdx.x == 0) g_partials[p][blockIdx.x] = v;
    cg::this_grid().sync();
    const int first = (blockIdx.x / L.G) * L.G;
    return Op::reduce([&](int j) { return __ldcg(&g_partials[p][first + j]); }, L.G);
}

struct ForwardArgs {
    Layout L;
    const void* s;
    const uint8_t* mask;
    const float* logk;
    int64_t logk_stride;
    float logk_scalar;
    int iters;
    double eps_start;
    double eps_decay;
    double eps_floor;
    void* out;
    void* weights;
    void* shares;
};

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <bool B>
struct Bool {
    static constexpr bool value = B;
};

// Masked entries (and scores at or below it, whose outputs are 0 anyway) are carried as this sentinel: it keeps
// z finite (no -inf - -inf or inf * 0 in the hot loop) and its exp(z - max) is 0 like the reference's finfo.min.
constexpr float kMasked = -1e20f;

// Iterations after the first: b = -relu(s + a), z = (s + b) / e. x / e is correctly rounded from r = RN(1 / e):
// q = RN(x r) is faithful, x - q e is exact in one FMA, and RN(q + (x - q e) r) = RN(x / e) (Markstein's theorem).
__device__ __forceinline__ float z_of(float s, float a, float e, float r) {
    const float x = s - fmaxf(s + a, 0.0f);
    const float q = x * r;
    return fmaf(fmaf(-q, e, x), r, q);
}

// The first iteration: b = -s, so z = 0 (NaN for a NaN score), and the reference's finfo.min where masked.
__device__ __forceinline__ float z_first(float s) { return s == kMasked ? -INFINITY : s - s; }

// expf, not __expf: the output keeps subnormal scores, which order the tokens of a row that carry almost no weight.
__device__ __forceinline__ float y_of(float s, float a, float e) {
    if (s == kMasked) return 0.0f;
    const float sa = s + a;
    const float b = -fmaxf(sa, 0.0f);
    return expf((sa + b) / e);
}

// The implicit-gradient weight of an output: y / e where y < 1, else 0.
__device__ __forceinline__ float q_of(float y, float e) { return y < 1.0f ? y / e : 0.0f; }

// 16 cached values need more than the 64 registers a 1024-thread block allows: that variant runs up to 512 threads.
template <typename T, int R>
__global__ void __launch_bounds__(R == 16 ? 512 : 1024) forward_kernel(const ForwardArgs args) {
    const Layout& L = args.L;
    const int nt = blockDim.x;
    const int64_t rounds = rounds_of(L);
    int phase = 0;
    for (int64_t round = 0; round < rounds; ++round) {
        const Slice sl = slice_of(L, round);
        // This thread's elements are at offsets j * nt < len from sp (and mp, out_p).
        const int64_t start = sl.base + sl.lo + threadIdx.x;
        const int64_t len = sl.hi - sl.lo - threadIdx.x;
        const T* sp = static_cast<const T*>(args.s) + start;
        const uint8_t* mp = args.mask != nullptr ? args.mask + start : nullptr;
        T* out_p = static_cast<T*>(args.out) + start;
        auto score = [&](int64_t off) -> float {
            const float s = load_f(sp, off);
            return (mp != nullptr && !mp[off]) || s <= kMasked ? kMasked : s;
        };
        float sv[R];
#pragma unroll
        for (int j = 0; j < R; ++j) sv[j] = j * nt < len ? score(j * nt) : kMasked;
        const int64_t streamed = static_cast<int64_t>(R) * nt;
        const bool active = sl.hi > sl.lo;
        const float logk = active && args.logk != nullptr ? args.logk[sl.row * args.logk_stride] : args.logk_scalar;
        float a = 0.0f;
        double e = args.eps_start;
        // One iteration; the first (b = -s) is a separate instantiation so that later ones carry none of its code.
        auto iterate = [&](auto first) {
            const float ef = static_cast<float>(e);
            const float r = __frcp_rn(ef);
            auto z_at = [&](float s) { return decltype(first)::value ? z_first(s) : z_of(s, a, ef, r); };
            float z[R];
#pragma unroll
            for (int j = 0; j < R; ++j) z[j] = z_at(sv[j]);
            float m0 = -INFINITY;
            float m1 = -INFINITY;
#pragma unroll
            for (int j = 0; j < R; j += 2) {
                m0 = fmaxf(m0, z[j]);
                m1 = fmaxf(m1, z[j + 1]);
            }
            float m = fmaxf(m0, m1);
            for (int64_t off = streamed; off < len; off += nt) m = fmaxf(m, z_at(score(off)));
            m = warp_max(m);
            float sum = 0.0f;
            if (m != -INFINITY) {
                // exp(z - m) = 2^(z log2e - m log2e) with one FMA per element: z log2e is exact inside the FMA and
                // the rounding of m log2e (mh + ml exactly) is undone once, on the sum, by 2^-ml ~ 1 - ml ln 2.
                const float mh = m * kLog2e;
                const float ml = fmaf(m, kLog2e, -mh);
                float s0 = 0.0f;
                float s1 = 0.0f;
#pragma unroll
                for (int j = 0; j < R; j += 2) {
                    s0 += ex2(fmaf(z[j], kLog2e, -mh));
                    s1 += ex2(fmaf(z[j + 1], kLog2e, -mh));
                }
                for (int64_t off = streamed; off < len; off += nt) s0 += ex2(fmaf(z_at(score(off)), kLog2e, -mh));
                sum = s0 + s1;
                sum = fmaf(sum, -ml * kLn2, sum);
            }
            const float2 total = row_reduce<MaxSumExp>(make_float2(m, warp_sum(sum)), L, phase);
            // A fully masked row has no maximum; its output is 0 whatever a is. (The fast __logf would save ~3% but
            // its ~1e-6 error flips the rounding of a more often: 3.5e-5 output differences instead of 1.2e-5.)
            a = total.x == -INFINITY ? 0.0f : ef * (logk - (total.x + logf(total.y)));
            e = fmax(e * args.eps_decay, args.eps_floor);
        };
        iterate(Bool<true>());
        for (int t = 1; t < args.iters; ++t) iterate(Bool<false>());
        const float ef = static_cast<float>(e);
        T* q_p = args.weights != nullptr ? static_cast<T*>(args.weights) + start : nullptr;
        float q_sum = 0.0f;  // of this thread's q as stored
        auto store = [&](int64_t off, float y) {
            store_f(out_p, off, y);
            if (q_p != nullptr) {
                const float q = stored(q_of(y, ef), q_p);
                store_f(q_p, off, q);
                q_sum += q;
            }
        };
#pragma unroll
        for (int j = 0; j < R; ++j) {
            if (j * nt < len) store(j * nt, y_of(sv[j], a, ef));
        }
        for (int64_t off = streamed; off < len; off += nt) store(off, y_of(score(off), a, ef));
        if (args.shares != nullptr) {  // the same for every thread: all of them join the row's reduction
            T* p_p = static_cast<T*>(args.shares) + start;
            const float total = row_reduce<SumSum>(make_float2(warp_sum(q_sum), 0.0f), L, phase).x;
            const float denom = fmaxf(total, smallest_positive(p_p));
            auto share = [&](int64_t off, float y) { store_f(p_p, off, stored(q_of(y, ef), p_p) / denom); };
#pragma unroll
            for (int j = 0; j < R; ++j) {
                if (j * nt < len) share(j * nt, y_of(sv[j], a, ef));
            }
            for (int64_t off = streamed; off < len; off += nt) share(off, y_of(score(off), a, ef));
        }
    }
}

struct BackwardArgs {
    Layout L;
    const void* y;
    const void* g;
    float eps;
    void* out;
};

template <typename T, int R>
__global__ void __launch_bounds__(1024) backward_kernel(const BackwardArgs args) {
    const Layout& L = args.L;
    const int nt = blockDim.x;
    const int64_t rounds = rounds_of(L);
    int phase = 0;
    for (int64_t round = 0; round < rounds; ++round) {
        const Slice sl = slice_of(L, round);
        const int64_t start = sl.base + sl.lo + threadIdx.x;
        const int64_t len = sl.hi - sl.lo - threadIdx.x;
        const T* yp = static_cast<const T*>(args.y) + start;
        const T* gp = static_cast<const T*>(args.g) + start;
        T* out_p = static_cast<T*>(args.out) + start;
        auto weight = [&](int64_t off) {
            const float v = load_f(yp, off);
            return v < 1.0f ? v : 0.0f;
        };
        float wv[R];
        float gv[R];
        float sgw = 0.0f;
        float sw = 0.0f;
#pragma unroll
        for (int j = 0; j < R; ++j) {
            const bool in = j * nt < len;
            wv[j] = in ? weight(j * nt) : 0.0f;
            gv[j] = in ? load_f(gp, j * nt) : 0.0f;
            sgw += gv[j] * wv[j];
            sw += wv[j];
        }
        const int64_t streamed = static_cast<int64_t>(R) * nt;
        for (int64_t off = streamed; off < len; off += nt) {
            const float w = weight(off);
            sgw += load_f(gp, off) * w;
            sw += w;
        }
        const float2 total = row_reduce<SumSum>(make_float2(warp_sum(sgw), warp_sum(sw)), L, phase);
        const float r = total.y > 0.0f ? total.x / total.y : 0.0f;
#pragma unroll
        for (int j = 0; j < R; ++j) {
            if (j * nt < len) store_f(out_p, j * nt, (wv[j] / args.eps) * (gv[j] - r));
        }
        for (int64_t off = streamed; off < len; off += nt) {
            store_f(out_p, off, (weight(off) / args.eps) * (load_f(gp, off) - r));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Host side

template <typename T>
const void* forward_for(int R) {
    switch (R) {
        case 4: return reinterpret_cast<const void*>(&forward_kernel<T, 4>);
        case 8: return reinterpret_cast<const void*>(&forward_kernel<T, 8>);
        default: return reinterpret_cast<const void*>(&forward_kernel<T, 16>);
    }
}

template <typename T>
const void* backward_for(int R) {
    return R == 4 ? reinterpret_cast<const void*>(&backward_kernel<T, 4>)
                  : reinterpret_cast<const void*>(&backward_kernel<T, 8>);
}

const void* kernel_for(bool backward, DType dtype, int R) {
    if (backward) return dtype == DType::F32 ? backward_for<float>(R) : backward_for<__half>(R);
    return dtype == DType::F32 ? forward_for<float>(R) : forward_for<__half>(R);
}

struct DeviceInfo {
    int sms;
    int major;
    int minor;
};

std::mutex g_cache_mutex;

DeviceInfo device_info() {
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    static std::map<int, DeviceInfo> cache;
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = cache.find(device);
    if (it != cache.end()) return it->second;
    DeviceInfo info{};
    check(cudaDeviceGetAttribute(&info.sms, cudaDevAttrMultiProcessorCount, device), "multiprocessor count");
    check(cudaDeviceGetAttribute(&info.major, cudaDevAttrComputeCapabilityMajor, device), "compute capability");
    check(cudaDeviceGetAttribute(&info.minor, cudaDevAttrComputeCapabilityMinor, device), "compute capability");
    cache[device] = info;
    return info;
}

// Blocks of `threads` threads that fit on one multiprocessor; for the cluster mode, whether a cluster of G fits.
int blocks_per_sm(const void* kernel, int threads) {
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    static std::map<std::tuple<int, const void*, int>, int> cache;
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    const auto key = std::make_tuple(device, kernel, threads);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    int n = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, 0), "occupancy");
    cache[key] = n;
    return n;
}

bool cluster_fits(const void* kernel, int threads, int G) {
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    static std::map<std::tuple<int, const void*, int, int>, bool> cache;
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    const auto key = std::make_tuple(device, kernel, threads, G);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (G > 8) check(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1), "cluster size");
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(G);
    cfg.blockDim = dim3(threads);
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = G;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    const bool fits = cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg) == cudaSuccess && clusters > 0;
    cudaGetLastError();
    cache[key] = fits;
    return fits;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Values per thread held in registers: 4, 8 or 16 (16 only for the forward at up to 512 threads); the rest of a
// block's share is re-read every iteration.
int elements_per_thread(int64_t chunk, int threads, bool backward) {
    const int64_t need = ceil_div(chunk, threads);
    return need <= 4 ? 4 : (need <= 8 || backward || threads > 512 ? 8 : 16);
}

const char* mode_name(int mode) {
    switch (mode) {
        case kModeBlock: return "block";
        case kModeCluster: return "cluster";
        default: return "grid";
    }
}

struct Plan {
    int mode;
    int G;
    int threads;
    int R;
    int64_t chunk;
    int64_t grid;
    const void* kernel;

    std::string describe() const {
        return std::string(mode_name(mode)) + " G=" + std::to_string(G) + " T=" + std::to_string(threads) +
               " R=" + std::to_string(R) + " grid=" + std::to_string(grid);
    }
};

Plan make_plan(int64_t rows, int64_t n, bool backward, DType dtype, const LaunchOverride& ov) {
    const DeviceInfo info = device_info();
    const bool clusters = info.major >= 9;
    Plan p{};
    p.G = ov.blocks_per_row;
    if (p.G < 0) throw ArgumentError("blocksPerRow must be >= 0, got " + std::to_string(p.G));
    if (p.G == 0) {
        // Rows of up to 8192 stay in one block (cross-block reductions cost more than the extra parallelism
        // gives); longer rows get ~2048 elements per block, fewer (up to 8192) when that makes more than two
        // blocks per multiprocessor, and at most 128 blocks per row.
        if (n > 8192) {
            p.G = static_cast<int>(std::min<int64_t>(ceil_div(n, 2048), kMaxGridBlocks));
            while (p.G > 2 && rows * p.G > int64_t{2} * info.sms && ceil_div(n, p.G) < 8192) p.G = (p.G + 1) / 2;
            p.G = std::min(p.G, kMaxGridGroup);
        } else {
            p.G = 1;
        }
    }
    p.mode = ov.mode;
    if (p.mode == kModeAuto) {
        p.mode = p.G == 1 ? kModeBlock : (p.G <= kMaxClusterBlocks && clusters ? kModeCluster : kModeGrid);
    }
    if (p.mode < kModeBlock || p.mode > kModeGrid) throw ArgumentError("unknown launch mode " + std::to_string(p.mode));
    if (p.mode == kModeBlock && p.G != 1) throw ArgumentError("mode block needs blocksPerRow = 1");
    if (p.mode == kModeCluster && (p.G > kMaxClusterBlocks || !clusters)) {
        throw ArgumentError("mode cluster needs compute capability >= 9.0 and blocksPerRow <= 16, got G=" +
                            std::to_string(p.G) + " on compute capability " + std::to_string(info.major) + "." +
                            std::to_string(info.minor));
    }
    p.chunk = ceil_div(std::max<int64_t>(n, 1), p.G);
    p.threads = ov.threads;
    if (p.threads == 0) {
        // 16 elements per thread (measured best on the H100) at up to 512 threads, except one-block rows under
        // 8192 elements: 8.
        const int per_thread = backward || (p.G == 1 && p.chunk < 8192) ? 8 : 16;
        p.threads = static_cast<int>(
            std::clamp<int64_t>(ceil_div(ceil_div(p.chunk, per_thread), 32) * 32, 32, per_thread == 16 ? 512 : 1024));
    }
    if (p.threads < 32 || p.threads > 1024 || p.threads % 32 != 0) {
        throw ArgumentError("threads must be a multiple of 32 in [32, 1024], got " + std::to_string(p.threads));
    }
    p.R = elements_per_thread(p.chunk, p.threads, backward);
    p.kernel = kernel_for(backward, dtype, p.R);
    if (p.mode == kModeCluster && !cluster_fits(p.kernel, p.threads, p.G)) {
        if (ov.mode == kModeCluster) throw RuntimeError("a cluster of " + std::to_string(p.G) + " blocks does not fit");
        p.mode = kModeGrid;
    }
    if (p.mode == kModeGrid) {
        const int64_t capacity =
            std::min<int64_t>(kMaxGridBlocks, int64_t{blocks_per_sm(p.kernel, p.threads)} * info.sms);
        if (p.G > capacity) {
            if (ov.blocks_per_row != 0) {
                throw ArgumentError("blocksPerRow " + std::to_string(p.G) + " exceeds the " +
                                    std::to_string(capacity) + " co-resident blocks of the grid mode");
            }
            p.G = static_cast<int>(capacity);
            p.chunk = ceil_div(n, p.G);
            p.R = elements_per_thread(p.chunk, p.threads, backward);
            p.kernel = kernel_for(backward, dtype, p.R);
        }
        p.grid = std::min<int64_t>(rows, capacity / p.G) * p.G;
    } else {
        p.grid = rows * p.G;
        if (p.grid > 0x7fffffff) throw ArgumentError("too many rows for one launch: " + std::to_string(rows));
    }
    return p;
}

void launch(const Plan& p, void* stream, void* args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(p.grid));
    cfg.blockDim = dim3(p.threads);
    cfg.stream = static_cast<cudaStream_t>(stream);
    cudaLaunchAttribute attr;
    if (p.mode == kModeCluster) {
        attr.id = cudaLaunchAttributeClusterDimension;
        attr.val.clusterDim.x = p.G;
        attr.val.clusterDim.y = 1;
        attr.val.clusterDim.z = 1;
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
    } else if (p.mode == kModeGrid) {
        attr.id = cudaLaunchAttributeCooperative;
        attr.val.cooperative = 1;
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
    }
    void* params[] = {args};
    check(cudaLaunchKernelExC(&cfg, p.kernel, params), "kernel launch");
    check(cudaGetLastError(), "kernel launch");
}

Layout layout_of(const Plan& p, int64_t rows, int64_t n) { return Layout{rows, n, p.chunk, p.G, p.mode}; }

}  // namespace

bool cuda_compiled() { return true; }

std::string cuda_probe() {
    static std::once_flag once;
    static std::string reason;
    std::call_once(once, [] {
        int count = 0;
        const cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess) {
            reason = std::string("no usable CUDA driver (") + cudaGetErrorString(err) + ")";
            cudaGetLastError();
            return;
        }
        if (count == 0) {
            reason = "no CUDA device";
            return;
        }
        try {  // one tiny forward proves that the kernels have an image for this device and run
            float host[4] = {0.5f, -1.0f, 2.0f, 0.25f};
            float* buf = static_cast<float*>(cuda_malloc(sizeof host * 2));
            cuda_memcpy(buf, host, sizeof host);
            const EpsSchedule eps{3, 1.0, 1.0, 1.0};
            CdForward p{1, 4, DType::F32, buf, nullptr, nullptr, 0, 0.7f, eps, buf + 4, nullptr, nullptr};
            cd_forward_cuda(p, 0, nullptr, LaunchOverride{});
            cuda_synchronize();
            cuda_free(buf);
        } catch (const std::exception& e) {
            reason = std::string("the CUDA kernels cannot run on device 0 (") + e.what() + ")";
        }
    });
    return reason;
}

void cd_forward_cuda(const CdForward& p, int device, void* stream, const LaunchOverride& ov) {
    if (p.rows == 0 || p.n == 0) return;
    DeviceGuard guard(device);
    const Plan plan = make_plan(p.rows, p.n, false, p.dtype, ov);
    ForwardArgs args{layout_of(plan, p.rows, p.n), p.s, p.mask, p.logk, p.logk_stride, p.logk_scalar,
                     p.eps.iters, p.eps.start, p.eps.decay, p.eps.floor, p.out, p.weights, p.shares};
    launch(plan, stream, &args);
}

void cd_backward_cuda(const CdBackward& p, int device, void* stream, const LaunchOverride& ov) {
    if (p.rows == 0 || p.n == 0) return;
    DeviceGuard guard(device);
    const Plan plan = make_plan(p.rows, p.n, true, p.dtype, ov);
    BackwardArgs args{layout_of(plan, p.rows, p.n), p.y, p.g, p.eps_final, p.out};
    launch(plan, stream, &args);
}

std::string cuda_describe_launch(int64_t rows, int64_t n, bool backward, int device, const LaunchOverride& ov) {
    DeviceGuard guard(device);
    return make_plan(rows, n, backward, DType::F32, ov).describe();
}

void* cuda_malloc(int64_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(bytes, 1))), "cudaMalloc");
    return p;
}

void cuda_free(void* p) { check(cudaFree(p), "cudaFree"); }

void cuda_memcpy(void* dst, const void* src, int64_t bytes) {
    check(cudaMemcpy(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault), "cudaMemcpy");
}

void cuda_memset(void* dst, int value, int64_t bytes) {
    check(cudaMemset(dst, value, static_cast<size_t>(bytes)), "cudaMemset");
}

void cuda_synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void* cuda_event_create() {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    return e;
}

void cuda_event_record(void* event, void* stream) {
    check(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}

float cuda_event_elapsed_ms(void* start, void* end) {
    check(cudaEventSynchronize(static_cast<cudaEvent_t>(end)), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)),
          "cudaEventElapsedTime");
    return ms;
}

void cuda_event_destroy(void* event) { check(cudaEventDestroy(static_cast<cudaEvent_t>(event)), "cudaEventDestroy"); }

std::string cuda_device_name() {
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    return std::string(prop.name) + " (compute capability " + std::to_string(prop.major) + "." +
           std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " multiprocessors)";
}

int64_t cuda_memory_used() {
    size_t free = 0;
    size_t total = 0;
    check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(total - free);
}

}  // namespace condjl
