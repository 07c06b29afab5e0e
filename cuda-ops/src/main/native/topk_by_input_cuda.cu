// CUDA kernels of the tie-broken top-k (tie_break_key.h), launched on the caller's stream.
//
// Rows of at most kShortRow entries: rank_kernel alone. Every thread ranks one entry by counting the entries of its
// row that come before it, a tile of keys at a time; a block stops once none of its entries can make the top k.
// O(n^2) work per row, over n threads.
//
// Longer rows, in two launches:
// 1. select_kernel, one block per row, finds the k best entries. A radix select on the 65-bit key (score, second)
//    fixes the bits of the k-th best key a digit at a time (the score's four bytes, then second's 33 bits as
//    9 + 8 + 8 + 8), each pass a histogram of the entries that match the bits fixed so far; it stops early where the
//    digit's bin holds exactly the entries still wanted. Every entry above the fixed prefix is selected, and of the
//    entries equal to it the wanted number of lowest positions, found by a scan in position order (they tie on the
//    whole (score, second), or all of them are wanted). At most 9 reads of the row. The k selected keys go to
//    scratch (rows * k * 24 bytes, from libtorch's caching allocator: jni_ops.cpp), in no particular order.
// 2. rank_kernel on the k selected keys orders them: O(k^2) work per row, over k threads. Chosen over a segmented
//    sort for its size: up to k = 16,384 it costs what rank_kernel costs on a whole row of 16,384 (the GPU path's old
//    limit on rows), and it grows as k^2 beyond, so CondjlOps.supportsTopKByInput sends a GPU k <= 16,384 only.
//
// Limits (check_limits): rows <= 2^31 - 1 (a block each), n <= 2^31 - 1 (32-bit counts), k <= 65,535 * 256 (the
// ranking grid).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "condjl_ops.h"
#include "cuda_common.cuh"
#include "tie_break_key.h"

namespace condjl {
namespace {

// The longest row that rank_kernel ranks whole. Measured on an H200 (three routers' rows, k = n/8, float32): ranking
// whole rows took 0.26 ms at n = 1,024 and 0.92 ms at 4,096, selecting first 0.09 and 0.24 ms.
constexpr int64_t kShortRow = 256;
constexpr int kRankThreads = 256;
constexpr int kSelectThreads = 1024;
constexpr int kSelectWarps = kSelectThreads / 32;
constexpr int kPasses = 8;      // digits of (score, second)
constexpr int kMaxBins = 512;   // second's first digit has 9 bits
constexpr uint32_t kNoDigit = 0xffffffffu;
constexpr unsigned kFull = 0xffffffffu;
constexpr int64_t kMaxGridX = 0x7fffffff;
constexpr int64_t kMaxRow = 0x7fffffff;  // the selection counts in 32 bits
constexpr int64_t kMaxGridY = 65535;

// A row's keys, read where needed: the selection reads raw and mask only for entries whose score can still matter.
template <typename T>
struct RowKeys {
    const T* scores;
    const T* raw;
    const uint8_t* mask;

    __device__ uint32_t score(int64_t j) const { return order_key(load_f(scores, j)); }
    __device__ uint64_t second(int64_t j) const { return second_key(mask == nullptr || mask[j] != 0, load_f(raw, j)); }
};

template <typename T>
__device__ RowKeys<T> row_keys(const TopKByInput& p, int64_t row) {
    const int64_t base = row * p.n;
    return RowKeys<T>{static_cast<const T*>(p.scores) + base, static_cast<const T*>(p.raw) + base,
                      p.mask == nullptr ? nullptr : p.mask + base};
}

// The bits of (score, second) that the selection has fixed, and their values.
struct Prefix {
    uint32_t score;
    uint32_t score_bits;
    uint64_t second;
    uint64_t second_bits;

    // 1, 0 or -1: whether the key (s, sec) is above, equal to or below the prefix on the fixed bits.
    __device__ int place(uint32_t s, uint64_t sec) const {
        s &= score_bits;
        sec &= second_bits;
        if (s != score) return s > score ? 1 : -1;
        if (sec != second) return sec > second ? 1 : -1;
        return 0;
    }
};

template <typename T>
__global__ void __launch_bounds__(kSelectThreads) select_kernel(const TopKByInput p, TieKey* selected) {
    __shared__ uint32_t hist[kMaxBins];
    __shared__ uint32_t warp_ties[kSelectWarps];
    __shared__ Prefix prefix;
    __shared__ uint32_t wanted;  // entries still to take among those equal to the prefix
    __shared__ bool settled;     // whether those are all of them
    __shared__ uint32_t above;   // entries above the prefix written so far
    const RowKeys<T> keys = row_keys<T>(p, blockIdx.x);
    TieKey* out = selected + static_cast<int64_t>(blockIdx.x) * p.k;
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    if (threadIdx.x == 0) {
        prefix = Prefix{0, 0, 0, 0};
        wanted = static_cast<uint32_t>(p.k);
        settled = false;
        above = 0;
    }
    __syncthreads();
    for (int pass = 0; pass < kPasses && !settled; ++pass) {
        const bool in_second = pass >= 4;
        const int shift = 24 - 8 * (pass % 4);
        const uint32_t digit_mask = pass == 4 ? 0x1ffu : 0xffu;
        for (int b = threadIdx.x; b < kMaxBins; b += kSelectThreads) hist[b] = 0;
        __syncthreads();
        const Prefix f = prefix;
        for (int64_t t = 0; t < p.n; t += kSelectThreads) {
            const int64_t j = t + threadIdx.x;
            uint32_t digit = kNoDigit;
            if (j < p.n) {
                const uint32_t s = keys.score(j);
                if ((s & f.score_bits) == f.score) {
                    if (!in_second) {
                        digit = (s >> shift) & digit_mask;
                    } else {
                        const uint64_t sec = keys.second(j);
                        if ((sec & f.second_bits) == f.second) digit = static_cast<uint32_t>(sec >> shift) & digit_mask;
                    }
                }
            }
            // one atomic per distinct digit of the warp: a row of ties (all zeros, say) would serialise on one bin
            const unsigned peers = __match_any_sync(kFull, digit);
            if (digit != kNoDigit && lane == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
        }
        __syncthreads();
        if (warp == 0) {
            // the bin of the wanted-th best matching key; each lane sums a run of bins, best (highest) first
            const int per_lane = static_cast<int>(digit_mask + 1) / 32;
            const int top = static_cast<int>(digit_mask) - lane * per_lane;
            const uint32_t want = wanted;
            uint32_t sum = 0;
            for (int b = 0; b < per_lane; ++b) sum += hist[top - b];
            uint32_t before = sum;
            for (int o = 1; o < 32; o <<= 1) {
                const uint32_t v = __shfl_up_sync(kFull, before, o);
                if (lane >= o) before += v;
            }
            before -= sum;
            if (before < want && want <= before + sum) {
                uint32_t rest = want - before;
                int d = top;
                while (hist[d] < rest) rest -= hist[d--];
                if (in_second) {
                    prefix.second |= static_cast<uint64_t>(d) << shift;
                    prefix.second_bits |= static_cast<uint64_t>(digit_mask) << shift;
                } else {
                    prefix.score |= static_cast<uint32_t>(d) << shift;
                    prefix.score_bits |= digit_mask << shift;
                }
                wanted = rest;
                settled = hist[d] == rest;
            }
        }
        __syncthreads();
    }
    // The k - wanted entries above the prefix take the first slots in any order, the wanted ones equal to it (the
    // lowest positions) the rest; the ranks of the equal entries come from a running count over tiles in order.
    const Prefix f = prefix;
    const uint32_t take = wanted;
    const int64_t first_tie = p.k - take;
    uint32_t ties_before = 0;
    for (int64_t t = 0; t < p.n; t += kSelectThreads) {
        const int64_t j = t + threadIdx.x;
        int place = -1;
        uint32_t s = 0;
        uint64_t sec = 0;
        if (j < p.n) {
            s = keys.score(j);
            if ((s & f.score_bits) >= f.score) {
                sec = keys.second(j);
                place = f.place(s, sec);
            }
        }
        const unsigned ties = __ballot_sync(kFull, place == 0);
        if (lane == 0) warp_ties[warp] = __popc(ties);
        if (place > 0) out[atomicAdd(&above, 1u)] = TieKey{s, sec, j};
        __syncthreads();
        uint32_t rank = ties_before + __popc(ties & ((1u << lane) - 1u));
        for (int w = 0; w < kSelectWarps; ++w) {
            if (w < warp) rank += warp_ties[w];
            ties_before += warp_ties[w];
        }
        if (place == 0 && rank < take) out[first_tie + rank] = TieKey{s, sec, j};
        __syncthreads();
    }
}

// Ranks m candidates of a row by counting the candidates that come before each, a tile of keys at a time, and writes
// those of rank < k at their rank. The candidates are the whole row (selected null, m = n) or its k selected keys.
template <typename T>
__global__ void __launch_bounds__(kRankThreads) rank_kernel(const TopKByInput p, const TieKey* selected) {
    __shared__ TieKey tile[kRankThreads];
    const int64_t row = blockIdx.x;
    const RowKeys<T> keys = row_keys<T>(p, row);
    const int64_t m = selected == nullptr ? p.n : p.k;
    const auto candidate = [&](int64_t j) {
        return selected == nullptr ? TieKey{keys.score(j), keys.second(j), j} : selected[row * p.k + j];
    };
    const int64_t i = static_cast<int64_t>(blockIdx.y) * kRankThreads + threadIdx.x;
    const bool active = i < m;
    const TieKey mine = active ? candidate(i) : TieKey{0, 0, 0};
    int64_t rank = 0;
    for (int64_t t = 0; t < m; t += kRankThreads) {
        const int64_t j = t + threadIdx.x;
        if (j < m) tile[threadIdx.x] = candidate(j);
        __syncthreads();
        const int c = m - t < kRankThreads ? static_cast<int>(m - t) : kRankThreads;
        if (active && rank < p.k) {
            for (int u = 0; u < c; ++u) rank += ranks_before(tile[u], mine) ? 1 : 0;
        }
        // a block stops once none of its candidates can make the top k
        if (__syncthreads_and(!active || rank >= p.k)) break;
    }
    if (active && rank < p.k) {
        const int64_t at = row * p.k + rank;
        p.indices[at] = mine.index;
        if (p.gates != nullptr) {
            T* gates = static_cast<T*>(p.gates);
            const float y = load_f(keys.scores, mine.index);
            store_f(gates, at, y + stored(1.0f - y, gates));
        }
    }
}

void check_limits(int64_t rows, int64_t n, int64_t k) {
    if (rows > kMaxGridX) {
        throw ArgumentError("top-k by input on CUDA takes at most " + std::to_string(kMaxGridX) +
                            " rows (a block each), got " + std::to_string(rows));
    }
    if (n > kMaxRow) {
        throw ArgumentError("top-k by input on CUDA takes rows of at most " + std::to_string(kMaxRow) +
                            " entries, got " + std::to_string(n));
    }
    if (k > kMaxGridY * kRankThreads) {
        throw ArgumentError("top-k by input on CUDA takes k <= " + std::to_string(kMaxGridY * kRankThreads) +
                            " (the ranking grid's " + std::to_string(kMaxGridY) + " blocks of " +
                            std::to_string(kRankThreads) + "), got " + std::to_string(k));
    }
}

template <typename T>
void launch(const TopKByInput& p, TieKey* selected, cudaStream_t stream) {
    if (selected != nullptr) {
        select_kernel<T><<<static_cast<unsigned>(p.rows), kSelectThreads, 0, stream>>>(p, selected);
    }
    const int64_t m = selected == nullptr ? p.n : p.k;
    const dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>((m + kRankThreads - 1) / kRankThreads));
    rank_kernel<T><<<grid, kRankThreads, 0, stream>>>(p, selected);
}

}  // namespace

int64_t topk_by_input_scratch(int64_t rows, int64_t n, int64_t k) {
    check_limits(rows, n, k);
    return n > kShortRow ? rows * k * static_cast<int64_t>(sizeof(TieKey)) : 0;
}

void topk_by_input_cuda(const TopKByInput& p, void* scratch, int device, void* stream) {
    if (p.rows == 0) return;
    if (topk_by_input_scratch(p.rows, p.n, p.k) > 0 && scratch == nullptr) {
        throw RuntimeError("top-k by input on CUDA: rows of " + std::to_string(p.n) + " entries need scratch");
    }
    DeviceGuard guard(device);
    TieKey* selected = p.n > kShortRow ? static_cast<TieKey*>(scratch) : nullptr;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (p.dtype == DType::F32) {
        launch<float>(p, selected, s);
    } else {
        launch<__half>(p, selected, s);
    }
    check(cudaGetLastError(), "top-k by input launch");
}

}  // namespace condjl
