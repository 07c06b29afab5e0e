// CUDA kernels of the tie-broken top-k (tie_break_key.h), launched on the caller's stream.
//
// Rows of at most kShortRow entries: rank_kernel. Every thread ranks one entry by counting the entries of its row
// that come before it (O(n^2) work per row, over n threads, one launch).
//
// Longer rows with k <= kMaxMergeK, in three launches (two where k <= kChunk):
// 1. select_kernel, one block per row, finds the k best entries. A radix select on the 65-bit key (score, second)
//    fixes the bits of the k-th best key a digit at a time (the score's four bytes, then second's 33 bits as
//    9 + 8 + 8 + 8), each pass a histogram of the entries that match the bits fixed so far; it stops early where the
//    digit's bin holds exactly the entries still wanted. Every entry above the fixed prefix is selected, and of the
//    entries equal to it the wanted number of lowest positions, found by a scan in position order (they tie on the
//    whole (score, second), or all of them are wanted). At most 9 reads of the row. The k selected keys go to
//    scratch (rows * k * 24 bytes, from libtorch's caching allocator: jni_ops.cpp), in no particular order.
//    Where few long rows would leave most SMs idle, select_wide_kernel does the same with a block per segment of
//    kWideSegment or more entries, in one cooperative launch (every block of the grid resident at once): the blocks
//    add their segments' histograms into their row's in global memory and wait for each other at a grid-wide
//    barrier, the row's first block fixes the digit, and the entries equal to the prefix are ranked in position
//    order from the counts of the segments before. It runs only where the whole grid fits on the GPU; else, or where
//    the cooperative launch fails, select_kernel does.
// 2. chunk_kernel orders each chunk of kChunk selected keys in place, each key ranked by counting within its chunk.
// 3. merge_kernel gives each key its rank among all k: its rank in its chunk plus, for every other chunk, the number
//    of that chunk's keys before it (a binary search). O(k^2 / kChunk * log kChunk) work per row, over k threads.
//
// Longer rows with a larger k: a stable radix sort of whole rows (CUB's DeviceRadixSort; about 25 API calls, which
// cost the host about 0.1 ms a sort, measured on an H200), a chunk of rows at a time. Each entry's key is (row, score,
// validity, raw) with the three ranks inverted, so that ascending order is the row's best first; the sort is stable
// and its input in position order, so ties on all of these keep the lower position first, as ranks_before has it.
// Then write_kernel copies each row's first k. Scratch holds two copies of a chunk's keys and positions, 20 bytes an
// entry, and CUB's own; a chunk has at most kSortEntries entries, or one row where a row is longer.
//
// Limits (check_limits): rows <= 2^31 - 1 (a block each), n <= 2^31 - 1 (32-bit counts and positions).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cooperative_groups.h>
#include <cub/device/device_radix_sort.cuh>
#include <cuda/std/tuple>
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
constexpr int kChunk = kRankThreads;
// The largest k that the selection takes; a larger one sorts whole rows.
constexpr int64_t kMaxMergeK = 65536;
constexpr int kSelectThreads = 1024;
constexpr int kSelectWarps = kSelectThreads / 32;
constexpr int kPasses = 8;      // digits of (score, second)
constexpr int kMaxBins = 512;   // second's first digit has 9 bits
constexpr uint32_t kNoDigit = 0xffffffffu;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kWriteThreads = 256;
// The most entries one sort takes (unless a row alone is longer): 40 MiB of keys and positions.
constexpr int64_t kSortEntries = int64_t{1} << 21;
constexpr int64_t kMaxGridX = 0x7fffffff;
constexpr int64_t kMaxRow = 0x7fffffff;  // 32-bit counts and positions
constexpr int64_t kAlign = 256;
// select_wide_kernel's segment: rows of fewer than two segments stay with select_kernel.
constexpr int64_t kWideSegment = 4096;
constexpr int kMaxDevices = 64;

// A row's keys, read where needed.
template <typename T>
struct RowKeys {
    const T* scores;
    const T* raw;
    const uint8_t* mask;

    __device__ uint32_t score(int64_t j) const { return order_key(load_f(scores, j)); }
    __device__ bool valid(int64_t j) const { return mask == nullptr || mask[j] != 0; }
    __device__ uint64_t second(int64_t j) const { return second_key(valid(j), load_f(raw, j)); }
};

template <typename T>
__device__ RowKeys<T> row_keys(const TopKByInput& p, int64_t row) {
    const int64_t base = row * p.n;
    return RowKeys<T>{static_cast<const T*>(p.scores) + base, static_cast<const T*>(p.raw) + base,
                      p.mask == nullptr ? nullptr : p.mask + base};
}

// The selected entry's gate, y + (1 - y) rounded as T does it.
template <typename T>
__device__ void write_selected(const TopKByInput& p, const RowKeys<T>& keys, int64_t at, int64_t index) {
    p.indices[at] = index;
    if (p.gates != nullptr) {
        T* gates = static_cast<T*>(p.gates);
        const float y = load_f(keys.scores, index);
        store_f(gates, at, y + stored(1.0f - y, gates));
    }
}

// Ranks each entry of a short row (one tile of keys in shared memory) by counting the entries that come before it,
// and writes those of rank < k at their rank.
template <typename T>
__global__ void __launch_bounds__(kRankThreads) rank_kernel(const TopKByInput p) {
    __shared__ TieKey tile[kRankThreads];
    const int64_t row = blockIdx.x;
    const RowKeys<T> keys = row_keys<T>(p, row);
    const auto key = [&](int64_t j) { return TieKey{keys.score(j), keys.second(j), j}; };
    const int64_t i = threadIdx.x;
    const bool active = i < p.n;
    const TieKey mine = active ? key(i) : TieKey{0, 0, 0};
    if (active) tile[threadIdx.x] = mine;
    __syncthreads();
    if (!active) return;
    int64_t rank = 0;
    for (int u = 0; u < p.n; ++u) rank += ranks_before(tile[u], mine) ? 1 : 0;
    if (rank < p.k) write_selected(p, keys, row * p.k + rank, i);
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

    // Fixes the digit d of a pass.
    __device__ void fix(bool in_second, int shift, uint32_t digit_mask, uint32_t d) {
        if (in_second) {
            second |= static_cast<uint64_t>(d) << shift;
            second_bits |= static_cast<uint64_t>(digit_mask) << shift;
        } else {
            score |= d << shift;
            score_bits |= digit_mask << shift;
        }
    }
};

// One pass of the radix select: which digit of the key it reads.
struct Pass {
    bool in_second;
    int shift;
    uint32_t digit_mask;

    __device__ explicit Pass(int pass)
        : in_second(pass >= 4), shift(24 - 8 * (pass % 4)), digit_mask(pass == 4 ? 0x1ffu : 0xffu) {}
};

// Adds to the block's shared hist the digit of every entry of [begin, end) that matches the prefix f. All threads of
// the block call it.
template <typename T>
__device__ void add_histogram(const RowKeys<T>& keys, const Prefix& f, const Pass& pass, int64_t begin, int64_t end,
                              uint32_t* hist) {
    const int lane = threadIdx.x % 32;
    for (int64_t t = begin; t < end; t += kSelectThreads) {
        const int64_t j = t + threadIdx.x;
        uint32_t digit = kNoDigit;
        if (j < end) {
            const uint32_t s = keys.score(j);
            if ((s & f.score_bits) == f.score) {
                if (!pass.in_second) {
                    digit = (s >> pass.shift) & pass.digit_mask;
                } else {
                    const uint64_t sec = keys.second(j);
                    if ((sec & f.second_bits) == f.second) {
                        digit = static_cast<uint32_t>(sec >> pass.shift) & pass.digit_mask;
                    }
                }
            }
        }
        // one atomic per distinct digit of the warp: a row of ties (all zeros, say) would serialise on one bin
        const unsigned peers = __match_any_sync(kFull, digit);
        if (digit != kNoDigit && lane == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
    }
}

template <bool kGlobal>
__device__ uint32_t bin(const uint32_t* hist, int d) {
    if constexpr (kGlobal) {
        return __ldcg(hist + d);  // written by other blocks: past this SM's L1
    } else {
        return hist[d];
    }
}

// Warp 0 of a block: the bin of the want-th best matching key, best (highest digit) first. Returns true on the one
// lane that finds it, with that digit and how many entries are still wanted from its bin. Each lane sums a run of
// bins, and a scan across the lanes finds the run.
template <bool kGlobal>
__device__ bool find_digit(const uint32_t* hist, const Pass& pass, uint32_t want, uint32_t& digit, uint32_t& rest,
                           uint32_t& in_bin) {
    const int lane = threadIdx.x % 32;
    const int per_lane = static_cast<int>(pass.digit_mask + 1) / 32;
    const int top = static_cast<int>(pass.digit_mask) - lane * per_lane;
    uint32_t sum = 0;
    for (int b = 0; b < per_lane; ++b) sum += bin<kGlobal>(hist, top - b);
    uint32_t before = sum;
    for (int o = 1; o < 32; o <<= 1) {
        const uint32_t v = __shfl_up_sync(kFull, before, o);
        if (lane >= o) before += v;
    }
    before -= sum;
    if (!(before < want && want <= before + sum)) return false;
    rest = want - before;
    int d = top;
    while (bin<kGlobal>(hist, d) < rest) rest -= bin<kGlobal>(hist, d--);
    digit = static_cast<uint32_t>(d);
    in_bin = bin<kGlobal>(hist, d);
    return true;
}

// Where entry j stands against the prefix f (1 above, 0 equal, -1 below), with its key parts.
template <typename T>
__device__ int place_of(const RowKeys<T>& keys, const Prefix& f, int64_t j, uint32_t& s, uint64_t& sec) {
    s = keys.score(j);
    if ((s & f.score_bits) < f.score) return -1;
    sec = keys.second(j);
    return f.place(s, sec);
}

// Writes the entries of [begin, end) that a selection with prefix f takes: those above it at slots counted by
// *above (shared or global memory; in any order), and those equal to it whose rank in position order, counting on
// from ties_before, is below take, at first_tie + rank. All threads of the block call it; warp_ties is shared.
template <typename T>
__device__ void write_taken(const RowKeys<T>& keys, const Prefix& f, int64_t begin, int64_t end, uint32_t ties_before,
                            uint32_t take, int64_t first_tie, uint32_t* above, uint32_t* warp_ties, TieKey* out) {
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const unsigned lower_lanes = (1u << lane) - 1u;
    for (int64_t t = begin; t < end; t += kSelectThreads) {
        const int64_t j = t + threadIdx.x;
        uint32_t s = 0;
        uint64_t sec = 0;
        const int place = j < end ? place_of(keys, f, j, s, sec) : -1;
        const unsigned ties = __ballot_sync(kFull, place == 0);
        const unsigned higher = __ballot_sync(kFull, place > 0);
        if (lane == 0) warp_ties[warp] = __popc(ties);
        uint32_t base = 0;
        if (lane == 0 && higher != 0) base = atomicAdd(above, __popc(higher));
        base = __shfl_sync(kFull, base, 0);
        if (place > 0) out[base + __popc(higher & lower_lanes)] = TieKey{s, sec, j};
        __syncthreads();
        uint32_t rank = ties_before + __popc(ties & lower_lanes);
        for (int u = 0; u < kSelectWarps; ++u) {
            if (u < warp) rank += warp_ties[u];
            ties_before += warp_ties[u];
        }
        if (place == 0 && rank < take) out[first_tie + rank] = TieKey{s, sec, j};
        __syncthreads();
    }
}

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
    const int warp = threadIdx.x / 32;
    if (threadIdx.x == 0) {
        prefix = Prefix{0, 0, 0, 0};
        wanted = static_cast<uint32_t>(p.k);
        settled = false;
        above = 0;
    }
    __syncthreads();
    for (int pass = 0; pass < kPasses && !settled; ++pass) {
        const Pass digit_of(pass);
        for (int b = threadIdx.x; b < kMaxBins; b += kSelectThreads) hist[b] = 0;
        __syncthreads();
        add_histogram(keys, prefix, digit_of, 0, p.n, hist);
        __syncthreads();
        uint32_t d = 0, rest = 0, in_bin = 0;
        if (warp == 0 && find_digit<false>(hist, digit_of, wanted, d, rest, in_bin)) {
            prefix.fix(digit_of.in_second, digit_of.shift, digit_of.digit_mask, d);
            wanted = rest;
            settled = in_bin == rest;
        }
        __syncthreads();
    }
    // The k - wanted entries above the prefix take the first slots in any order, the wanted ones equal to it (the
    // lowest positions) the rest; the ranks of the equal entries come from a running count over tiles in order.
    write_taken(keys, prefix, 0, p.n, 0, wanted, p.k - wanted, &above, warp_ties, out);
}

// select_wide_kernel's state of one row, in global memory.
struct WideRow {
    uint32_t hist[kMaxBins];
    Prefix prefix;
    uint32_t wanted;
    uint32_t settled;
    uint32_t above;
};

// What select_wide_kernel keeps in global memory: a WideRow per row, a tie count per block, the settled rows.
struct WideScratch {
    WideRow* rows;
    uint32_t* ties;
    uint32_t* settled_rows;
};

__device__ Prefix load_prefix(const Prefix* p) {
    return Prefix{__ldcg(&p->score), __ldcg(&p->score_bits), __ldcg(&p->second), __ldcg(&p->second_bits)};
}

// select_kernel with `segments` blocks per row (block b: row b / segments, segment b % segments), launched
// cooperatively so that every block runs at once and grid.sync() can wait for all of them.
template <typename T>
__global__ void __launch_bounds__(kSelectThreads)
    select_wide_kernel(const TopKByInput p, TieKey* selected, WideScratch w, int segments) {
    namespace cg = cooperative_groups;
    cg::grid_group grid = cg::this_grid();
    __shared__ uint32_t hist[kMaxBins];
    __shared__ uint32_t warp_ties[kSelectWarps];
    __shared__ Prefix prefix;
    __shared__ uint32_t shared_word;  // a value thread 0 reads for the block
    const int64_t row = blockIdx.x / segments;
    const int segment = static_cast<int>(blockIdx.x % segments);
    const int64_t per_segment = (p.n + segments - 1) / segments;
    const int64_t begin = segment * per_segment < p.n ? segment * per_segment : p.n;
    const int64_t end = begin + per_segment < p.n ? begin + per_segment : p.n;
    const RowKeys<T> keys = row_keys<T>(p, row);
    WideRow& state = w.rows[row];
    TieKey* out = selected + row * p.k;
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    if (segment == 0) {
        for (int b = threadIdx.x; b < kMaxBins; b += kSelectThreads) state.hist[b] = 0;
        if (threadIdx.x == 0) {
            state.prefix = Prefix{0, 0, 0, 0};
            state.wanted = static_cast<uint32_t>(p.k);
            state.settled = 0;
            state.above = 0;
        }
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) *w.settled_rows = 0;
    grid.sync();
    for (int pass = 0; pass < kPasses; ++pass) {
        const Pass digit_of(pass);
        if (threadIdx.x == 0) {
            prefix = load_prefix(&state.prefix);
            shared_word = __ldcg(&state.settled);
        }
        for (int b = threadIdx.x; b < kMaxBins; b += kSelectThreads) hist[b] = 0;
        __syncthreads();
        const bool settled = shared_word != 0;
        if (!settled) {
            add_histogram(keys, prefix, digit_of, begin, end, hist);
            __syncthreads();
            for (int b = threadIdx.x; b <= static_cast<int>(digit_of.digit_mask); b += kSelectThreads) {
                if (hist[b] != 0) atomicAdd(&state.hist[b], hist[b]);
            }
        }
        grid.sync();
        if (segment == 0 && !settled) {
            uint32_t d = 0, rest = 0, in_bin = 0;
            if (warp == 0 && find_digit<true>(state.hist, digit_of, __ldcg(&state.wanted), d, rest, in_bin)) {
                Prefix fixed = prefix;
                fixed.fix(digit_of.in_second, digit_of.shift, digit_of.digit_mask, d);
                state.prefix = fixed;
                state.wanted = rest;
                if (in_bin == rest) {
                    state.settled = 1;
                    atomicAdd(w.settled_rows, 1u);
                }
            }
            __syncthreads();
            for (int b = threadIdx.x; b < kMaxBins; b += kSelectThreads) state.hist[b] = 0;
        }
        grid.sync();
        if (threadIdx.x == 0) shared_word = __ldcg(w.settled_rows);
        __syncthreads();
        // the same value in every block: it changes only between the two barriers of a pass
        if (shared_word == static_cast<uint32_t>(p.rows)) break;
        __syncthreads();
    }
    // As in select_kernel; the ties equal to the prefix are ranked from the count in the segments before this one.
    if (threadIdx.x == 0) {
        prefix = load_prefix(&state.prefix);
        shared_word = 0;
    }
    __syncthreads();
    const Prefix f = prefix;
    const uint32_t take = __ldcg(&state.wanted);
    const int64_t first_tie = p.k - take;
    for (int64_t t = begin; t < end; t += kSelectThreads) {
        const int64_t j = t + threadIdx.x;
        uint32_t s = 0;
        uint64_t sec = 0;
        const int place = j < end ? place_of(keys, f, j, s, sec) : -1;
        const unsigned ties = __ballot_sync(kFull, place == 0);
        if (lane == 0 && ties != 0) atomicAdd(&shared_word, __popc(ties));
    }
    __syncthreads();
    if (threadIdx.x == 0) w.ties[blockIdx.x] = shared_word;
    grid.sync();
    if (threadIdx.x == 0) {
        uint32_t before = 0;
        for (int u = 0; u < segment; ++u) before += __ldcg(&w.ties[row * segments + u]);
        shared_word = before;
    }
    __syncthreads();
    write_taken(keys, f, begin, end, shared_word, take, first_tie, &state.above, warp_ties, out);
}

// Orders each chunk of kChunk selected keys in place: each key's rank within its chunk, by counting. Where the k
// selected are one chunk, that is their rank, and the output is written here.
template <typename T>
__global__ void __launch_bounds__(kChunk) chunk_kernel(const TopKByInput p, TieKey* selected) {
    __shared__ TieKey tile[kChunk];
    TieKey* row = selected + static_cast<int64_t>(blockIdx.x) * p.k;
    const int64_t first = static_cast<int64_t>(blockIdx.y) * kChunk;
    const int size = p.k - first < kChunk ? static_cast<int>(p.k - first) : kChunk;
    const bool active = threadIdx.x < size;
    if (active) tile[threadIdx.x] = row[first + threadIdx.x];
    __syncthreads();
    if (!active) return;
    const TieKey mine = tile[threadIdx.x];
    int rank = 0;
    for (int u = 0; u < size; ++u) rank += ranks_before(tile[u], mine) ? 1 : 0;
    if (p.k <= kChunk) {
        write_selected(p, row_keys<T>(p, blockIdx.x), static_cast<int64_t>(blockIdx.x) * p.k + rank, mine.index);
    } else {
        row[first + rank] = mine;
    }
}

// Writes each selected key at its rank among the row's k: its rank in its ordered chunk plus, for each other chunk,
// how many of that chunk's keys come before it.
template <typename T>
__global__ void __launch_bounds__(kChunk) merge_kernel(const TopKByInput p, const TieKey* selected) {
    const TieKey* row = selected + static_cast<int64_t>(blockIdx.x) * p.k;
    const int64_t at = static_cast<int64_t>(blockIdx.y) * kChunk + threadIdx.x;
    if (at >= p.k) return;
    const TieKey mine = row[at];
    const int64_t own = blockIdx.y;
    int64_t rank = at - own * kChunk;
    for (int64_t c = 0; c * kChunk < p.k; ++c) {
        if (c == own) continue;
        // the first position of chunk c whose key does not come before mine
        int64_t lo = c * kChunk;
        int64_t hi = lo + kChunk < p.k ? lo + kChunk : p.k;
        const int64_t start = lo;
        while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            if (ranks_before(row[mid], mine)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        rank += lo - start;
    }
    write_selected(p, row_keys<T>(p, blockIdx.x), static_cast<int64_t>(blockIdx.x) * p.k + rank, mine.index);
}

// An entry's sort key: ascending order is (row ascending, then) the tie-break order best first.
struct SortKey {
    uint32_t row;      // within the chunk
    uint32_t score;    // ~order_key(score)
    uint8_t invalid;   // 1 for a masked entry
    uint32_t raw;      // ~order_key(raw)
};

struct SortKeyParts {
    __host__ __device__ ::cuda::std::tuple<uint32_t&, uint32_t&, uint8_t&, uint32_t&> operator()(SortKey& k) const {
        return {k.row, k.score, k.invalid, k.raw};
    }
};

// The bits of a SortKey that a chunk of `rows` rows needs: score, invalid and raw, and enough of row.
int sort_end_bit(int64_t rows) {
    int row_bits = 0;
    while ((int64_t{1} << row_bits) < rows) ++row_bits;
    return 32 + 8 + 32 + row_bits;
}

template <typename T>
__global__ void __launch_bounds__(kWriteThreads) key_kernel(const TopKByInput p, int64_t first_row, int64_t entries,
                                                            SortKey* sort_keys, int32_t* positions) {
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * kWriteThreads + threadIdx.x; e < entries;
         e += static_cast<int64_t>(gridDim.x) * kWriteThreads) {
        const int64_t row = e / p.n;
        const int64_t j = e - row * p.n;
        const RowKeys<T> keys = row_keys<T>(p, first_row + row);
        sort_keys[e] = SortKey{static_cast<uint32_t>(row), ~keys.score(j), static_cast<uint8_t>(keys.valid(j) ? 0 : 1),
                               ~order_key(load_f(keys.raw, j))};
        positions[e] = static_cast<int32_t>(j);
    }
}

// Copies each sorted row's first k positions (and their gates) to the output rows first_row, ...
template <typename T>
__global__ void __launch_bounds__(kWriteThreads) write_kernel(const TopKByInput p, int64_t first_row, int64_t rows,
                                                              const int32_t* sorted) {
    const int64_t count = rows * p.k;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * kWriteThreads + threadIdx.x; e < count;
         e += static_cast<int64_t>(gridDim.x) * kWriteThreads) {
        const int64_t row = e / p.k;
        const int64_t rank = e - row * p.k;
        const RowKeys<T> keys = row_keys<T>(p, first_row + row);
        write_selected(p, keys, (first_row + row) * p.k + rank, sorted[row * p.n + rank]);
    }
}

// How the long rows are sorted: rows per chunk, and where each part of the scratch lies.
struct SortPlan {
    int64_t chunk_rows = 0;
    int64_t entries = 0;  // per chunk
    size_t cub_bytes = 0;
    int64_t keys_at[2] = {0, 0};
    int64_t positions_at[2] = {0, 0};
    int64_t cub_at = 0;
    int64_t bytes = 0;
};

int64_t aligned(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

SortPlan sort_plan(int64_t rows, int64_t n, int device) {
    SortPlan plan;
    plan.chunk_rows = std::max<int64_t>(1, std::min(rows, kSortEntries / n));
    plan.entries = plan.chunk_rows * n;
    DeviceGuard guard(device);
    cub::DoubleBuffer<SortKey> keys(nullptr, nullptr);
    cub::DoubleBuffer<int32_t> positions(nullptr, nullptr);
    check(cub::DeviceRadixSort::SortPairs(nullptr, plan.cub_bytes, keys, positions, plan.entries, SortKeyParts{}, 0,
                                          sort_end_bit(plan.chunk_rows)),
          "top-k by input: sizing the sort");
    int64_t at = 0;
    for (int b = 0; b < 2; ++b) {
        plan.keys_at[b] = at;
        at += aligned(plan.entries * static_cast<int64_t>(sizeof(SortKey)));
        plan.positions_at[b] = at;
        at += aligned(plan.entries * static_cast<int64_t>(sizeof(int32_t)));
    }
    plan.cub_at = at;
    plan.bytes = at + aligned(static_cast<int64_t>(plan.cub_bytes));
    return plan;
}

unsigned grid_for(int64_t count) {
    return static_cast<unsigned>(std::min<int64_t>((count + kWriteThreads - 1) / kWriteThreads, 65535 * 8));
}

template <typename T>
void sort_rows(const TopKByInput& p, const SortPlan& plan, char* scratch, cudaStream_t stream) {
    for (int64_t first = 0; first < p.rows; first += plan.chunk_rows) {
        const int64_t rows = std::min(plan.chunk_rows, p.rows - first);
        const int64_t entries = rows * p.n;
        cub::DoubleBuffer<SortKey> keys(reinterpret_cast<SortKey*>(scratch + plan.keys_at[0]),
                                        reinterpret_cast<SortKey*>(scratch + plan.keys_at[1]));
        cub::DoubleBuffer<int32_t> positions(reinterpret_cast<int32_t*>(scratch + plan.positions_at[0]),
                                             reinterpret_cast<int32_t*>(scratch + plan.positions_at[1]));
        key_kernel<T><<<grid_for(entries), kWriteThreads, 0, stream>>>(p, first, entries, keys.Current(),
                                                                        positions.Current());
        size_t cub_bytes = plan.cub_bytes;
        check(cub::DeviceRadixSort::SortPairs(scratch + plan.cub_at, cub_bytes, keys, positions, entries,
                                              SortKeyParts{}, 0, sort_end_bit(rows), stream),
              "top-k by input: sorting");
        write_kernel<T><<<grid_for(rows * p.k), kWriteThreads, 0, stream>>>(p, first, rows, positions.Current());
    }
}

void check_limits(int64_t rows, int64_t n) {
    if (rows > kMaxGridX) {
        throw ArgumentError("top-k by input on CUDA takes at most " + std::to_string(kMaxGridX) +
                            " rows (a block each), got " + std::to_string(rows));
    }
    if (n > kMaxRow) {
        throw ArgumentError("top-k by input on CUDA takes rows of at most " + std::to_string(kMaxRow) +
                            " entries, got " + std::to_string(n));
    }
}

enum class Path { kRank, kSelect, kSort };

Path path_for(int64_t n, int64_t k) {
    if (n <= kShortRow) return Path::kRank;
    return k <= kMaxMergeK ? Path::kSelect : Path::kSort;
}

// The most blocks of select_wide_kernel that can run at once on the device: 0 where it cannot launch cooperatively.
int cooperative_blocks(int device) {
    static std::atomic<int> cached[kMaxDevices];  // blocks + 1; 0 before the first query
    if (device < 0 || device >= kMaxDevices) return 0;
    const int known = cached[device].load();
    if (known > 0) return known - 1;
    DeviceGuard guard(device);
    int cooperative = 0, sms = 0, per_sm_f32 = 0, per_sm_f16 = 0;
    check(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device), "top-k by input: attributes");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "top-k by input: attributes");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm_f32, select_wide_kernel<float>, kSelectThreads, 0),
          "top-k by input: occupancy");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm_f16, select_wide_kernel<__half>, kSelectThreads, 0),
          "top-k by input: occupancy");
    const int blocks = cooperative != 0 ? sms * std::min(per_sm_f32, per_sm_f16) : 0;
    cached[device].store(blocks + 1);
    return blocks;
}

// The selection's scratch: the selected keys, then select_wide_kernel's state where it runs (segments >= 2).
struct SelectPlan {
    int64_t segments = 1;
    int64_t rows_at = 0;
    int64_t ties_at = 0;
    int64_t settled_at = 0;
    int64_t bytes = 0;
};

SelectPlan select_plan(int64_t rows, int64_t n, int64_t k, int device) {
    SelectPlan plan;
    plan.bytes = rows * k * static_cast<int64_t>(sizeof(TieKey));
    const int64_t wanted = n / kWideSegment;
    if (wanted < 2) return plan;
    plan.segments = std::min(wanted, cooperative_blocks(device) / rows);
    if (plan.segments < 2) {
        plan.segments = 1;
        return plan;
    }
    plan.rows_at = aligned(plan.bytes);
    plan.ties_at = plan.rows_at + aligned(rows * static_cast<int64_t>(sizeof(WideRow)));
    plan.settled_at = plan.ties_at + aligned(rows * plan.segments * static_cast<int64_t>(sizeof(uint32_t)));
    plan.bytes = plan.settled_at + static_cast<int64_t>(sizeof(uint32_t));
    return plan;
}

// Whether select_wide_kernel ran; false where the cooperative launch failed (the error is cleared).
template <typename T>
bool select_wide(const TopKByInput& p, const SelectPlan& plan, char* scratch, cudaStream_t stream) {
    TieKey* selected = reinterpret_cast<TieKey*>(scratch);
    WideScratch wide{reinterpret_cast<WideRow*>(scratch + plan.rows_at),
                     reinterpret_cast<uint32_t*>(scratch + plan.ties_at),
                     reinterpret_cast<uint32_t*>(scratch + plan.settled_at)};
    int segments = static_cast<int>(plan.segments);
    TopKByInput args = p;
    void* params[] = {&args, &selected, &wide, &segments};
    const dim3 grid(static_cast<unsigned>(p.rows * plan.segments));
    if (cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(select_wide_kernel<T>), grid, dim3(kSelectThreads),
                                    params, 0, stream) == cudaSuccess) {
        return true;
    }
    cudaGetLastError();
    return false;
}

template <typename T>
void select_rows(const TopKByInput& p, const SelectPlan& plan, char* scratch, cudaStream_t stream) {
    TieKey* selected = reinterpret_cast<TieKey*>(scratch);
    if (plan.segments < 2 || !select_wide<T>(p, plan, scratch, stream)) {
        select_kernel<T><<<static_cast<unsigned>(p.rows), kSelectThreads, 0, stream>>>(p, selected);
    }
    const dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>((p.k + kChunk - 1) / kChunk));
    chunk_kernel<T><<<grid, kChunk, 0, stream>>>(p, selected);
    if (p.k > kChunk) merge_kernel<T><<<grid, kChunk, 0, stream>>>(p, selected);
}

template <typename T>
void launch(const TopKByInput& p, void* scratch, int device, cudaStream_t stream) {
    switch (path_for(p.n, p.k)) {
        case Path::kRank:
            rank_kernel<T><<<static_cast<unsigned>(p.rows), kRankThreads, 0, stream>>>(p);
            break;
        case Path::kSelect:
            select_rows<T>(p, select_plan(p.rows, p.n, p.k, device), static_cast<char*>(scratch), stream);
            break;
        case Path::kSort:
            sort_rows<T>(p, sort_plan(p.rows, p.n, device), static_cast<char*>(scratch), stream);
            break;
    }
}

}  // namespace

int64_t topk_by_input_scratch(int64_t rows, int64_t n, int64_t k, int device) {
    check_limits(rows, n);
    if (rows == 0) return 0;
    switch (path_for(n, k)) {
        case Path::kSelect:
            return select_plan(rows, n, k, device).bytes;
        case Path::kSort:
            return sort_plan(rows, n, device).bytes;
        default:
            return 0;
    }
}

void topk_by_input_cuda(const TopKByInput& p, void* scratch, int device, void* stream) {
    if (p.rows == 0) return;
    check_limits(p.rows, p.n);
    if (path_for(p.n, p.k) != Path::kRank && scratch == nullptr) {
        throw RuntimeError("top-k by input on CUDA: rows of " + std::to_string(p.n) + " entries need scratch");
    }
    DeviceGuard guard(device);
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (p.dtype == DType::F32) {
        launch<float>(p, scratch, device, s);
    } else {
        launch<__half>(p, scratch, device, s);
    }
    check(cudaGetLastError(), "top-k by input launch");
}

}  // namespace condjl
