// Exact Hamming k-nearest-neighbour search on the device, with the CPU
// path's results and tie order: per query the k smallest distances, sorted
// by (distance, ascending database index); k may exceed N (padding:
// distance INT32_MAX, index -1).
//
// One block per tile of 8 queries, fused:
//  1. distance pass: every thread takes items j = t, t + blockDim, ..., loads
//     each database code once and counts its distance to each of the tile's
//     queries into that query's shared-memory histogram of K + 1 bins;
//  2. threshold: thread t turns query t's histogram into exclusive offsets
//     and finds h*, the smallest distance whose cumulative count reaches k;
//  3. compaction pass in index order, blockDim items per step and query:
//     each warp groups its lanes by distance (__match_any_sync), ranks them
//     within the group, and the warps claim their offsets in order, so every
//     item at distance <= h* lands at its final sorted position directly.
//     Steps with no candidate skip the ordered claim (__syncthreads_count).
// No heap and no sort: the only per-item state is one histogram increment.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/core/bits.hpp"
#include "nmhash/cuda/device_utils.cuh"

namespace nmhash::gpu {

namespace kernels {

// Distance of two codes of `words` words; W = 1, 2 fix the width at
// compile time (W = 0: any width).
template <int W>
__device__ __forceinline__ unsigned hamming_words(const std::uint64_t* a, const std::uint64_t* b,
                                                  unsigned words) {
  const unsigned nw = W > 0 ? static_cast<unsigned>(W) : words;
  unsigned d = 0;
  for (unsigned w = 0; w < nw; ++w) d += static_cast<unsigned>(popcount64(a[w] ^ b[w]));
  return d;
}

// The database of the scans, in one of two layouts. Both give code j's
// distance to a query held as `words` 64-bit words (the packed_codes
// layout), and, for a width W > 0 fixed at compile time, code j as W words
// in registers (loaded once for a tile of queries).
//
// word_rows: packed_codes rows, `words` 64-bit words per code.
struct word_rows {
  const std::uint64_t* p;
  unsigned words;
  template <int W>
  __device__ __forceinline__ void fetch(std::size_t j, std::uint64_t* x) const {
    for (int w = 0; w < W; ++w) x[w] = p[j * words + static_cast<unsigned>(w)];
  }
  __device__ __forceinline__ unsigned distance(const std::uint64_t* q, std::size_t j) const {
    return hamming_words<0>(q, p + j * words, words);
  }
};

// byte_rows<G>: `bytes` bytes per code back to back (binary_index's layout,
// ceil(K / 8) bytes), read G bytes at a time (G divides bytes, so every
// load is aligned); byte b of a code is bits 8b .. 8b + 7.
template <int G>
struct byte_rows {
  const unsigned char* p;
  unsigned bytes;
  __device__ __forceinline__ std::uint64_t piece(const unsigned char* a) const {
#if defined(NMHASH_SIMT_ACTIVE)
    std::uint64_t v = 0;
    for (int b = 0; b < G; ++b) v |= static_cast<std::uint64_t>(a[b]) << (8 * b);
    return v;
#else
    if constexpr (G == 8) return *reinterpret_cast<const std::uint64_t*>(a);
    if constexpr (G == 4) return *reinterpret_cast<const std::uint32_t*>(a);
    if constexpr (G == 2) return *reinterpret_cast<const std::uint16_t*>(a);
    return *a;
#endif
  }
  // Word w of code j (bytes 8w .. 8w + 7, zero past the code).
  __device__ __forceinline__ std::uint64_t word(std::size_t j, unsigned w) const {
    const unsigned char* c = p + j * bytes + w * 8u;
    const unsigned left = bytes - w * 8u, n = left < 8u ? left : 8u;
    std::uint64_t v = 0;
    for (unsigned b = 0; b < n; b += G) v |= piece(c + b) << (8u * b);
    return v;
  }
  template <int W>
  __device__ __forceinline__ void fetch(std::size_t j, std::uint64_t* x) const {
    for (int w = 0; w < W; ++w) x[w] = word(j, static_cast<unsigned>(w));
  }
  __device__ __forceinline__ unsigned distance(const std::uint64_t* q, std::size_t j) const {
    unsigned d = 0;
    for (unsigned w = 0; w * 8u < bytes; ++w) d += static_cast<unsigned>(popcount64(q[w] ^ word(j, w)));
    return d;
  }
};

// Distance of database code j to query q (`words` words).
template <int W, class Codes>
__device__ __forceinline__ unsigned code_distance(const Codes& db, const std::uint64_t* q, std::size_t j) {
  if constexpr (W > 0) {
    std::uint64_t x[W];
    db.template fetch<W>(j, x);
    return hamming_words<W>(q, x, static_cast<unsigned>(W));
  } else {
    return db.distance(q, j);
  }
}

// T queries per block share every database word they load (T times less
// L2 traffic than one query per block). Dynamic shared memory: T (bits + 1)
// unsigned counters, then offsets.
template <int W, int T, class Codes = word_rows>
__global__ void hamming_topk(const std::uint64_t* __restrict__ queries, std::size_t nq, Codes db,
                             std::size_t n, unsigned words, unsigned bits, std::size_t k,
                             std::int32_t* __restrict__ out_dist, std::int64_t* __restrict__ out_idx) {
  NMHASH_DYNAMIC_SHARED(unsigned, offset);
  __shared__ unsigned s_threshold[T];
  const std::size_t q0 = static_cast<std::size_t>(blockIdx.x) * T;
  const unsigned nt = nq - q0 < static_cast<std::size_t>(T) ? static_cast<unsigned>(nq - q0) : T;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const unsigned warps = blockDim.x / 32, bins = bits + 1;
  const std::size_t kk = k < n ? k : n;

  for (unsigned h = tid; h < T * bins; h += blockDim.x) offset[h] = 0;
  __syncthreads();
  for (std::size_t j = tid; j < n; j += blockDim.x) {
    if constexpr (W > 0) {
      std::uint64_t x[W];
      db.template fetch<W>(j, x);
      for (unsigned t = 0; t < nt; ++t)
        atomicAdd(&offset[t * bins + hamming_words<W>(queries + (q0 + t) * words, x, words)], 1u);
    } else {
      for (unsigned t = 0; t < nt; ++t) atomicAdd(&offset[t * bins + db.distance(queries + (q0 + t) * words, j)], 1u);
    }
  }
  __syncthreads();
  if (tid < nt) {
    unsigned* off = offset + tid * bins;
    unsigned cum = 0;
    unsigned threshold = bits + 1;
    for (unsigned h = 0; h <= bits; ++h) {
      const unsigned c = off[h];
      off[h] = cum;
      if (threshold > bits && cum + c >= kk) threshold = h;
      cum += c;
    }
    s_threshold[tid] = kk == 0 ? 0 : threshold;
  }
  __syncthreads();

  for (std::size_t c0 = 0; c0 < n && kk > 0; c0 += blockDim.x) {
    const std::size_t j = c0 + tid;
    for (unsigned t = 0; t < nt; ++t) {
      const unsigned d = j < n ? code_distance<W>(db, queries + (q0 + t) * words, j) : bits + 1;
      const bool keep = d <= s_threshold[t];
      if (__syncthreads_count(keep) == 0) continue;
      const unsigned group = __match_any_sync(0xFFFFFFFFu, keep ? d : bits + 1);
      const unsigned rank = __popc(group & lanemask_lt());
      const int leader = __ffs(static_cast<int>(group)) - 1;
      unsigned* off = offset + t * bins;
      for (unsigned w = 0; w < warps; ++w) {
        if (warp == w) {
          unsigned base = 0;
          if (keep && static_cast<int>(lane) == leader) {
            base = off[d];
            off[d] = base + static_cast<unsigned>(__popc(group));
          }
          base = __shfl_sync(0xFFFFFFFFu, base, leader);
          const unsigned pos = base + rank;
          if (keep && pos < kk) {
            out_dist[(q0 + t) * k + pos] = static_cast<std::int32_t>(d);
            out_idx[(q0 + t) * k + pos] = static_cast<std::int64_t>(j);
          }
        }
        __syncthreads();
      }
    }
  }
  for (unsigned t = 0; t < nt; ++t)
    for (std::size_t r = kk + tid; r < k; r += blockDim.x) {
      out_dist[(q0 + t) * k + r] = 2147483647;
      out_idx[(q0 + t) * k + r] = -1;
    }
}

}  // namespace kernels

inline constexpr unsigned topk_block_threads = 256;
// Queries per block (fewer for very long codes, whose T histograms would
// not fit in 48 KB of shared memory).
inline constexpr int topk_query_tile = 8;

inline std::size_t topk_shared_bytes(std::size_t bits, int tile) {
  return static_cast<std::size_t>(tile) * (bits + 1) * sizeof(unsigned);
}

// Top-k of nq queries against n database codes of `bits` bits, all arrays
// on the device (codes in the packed_codes layout). Writes nq x k distances
// and indices. Needs no global workspace.
inline void hamming_knn(const std::uint64_t* d_queries, std::size_t nq,
                        const std::uint64_t* d_db, std::size_t n, std::size_t bits,
                        std::size_t k, std::int32_t* d_dist, std::int64_t* d_idx,
                        cudaStream_t stream) {
  require(bits >= 1 && bits <= 4096, "gpu::hamming_knn: K = ", bits, " outside [1, 4096]");
  require(k >= 1, "gpu::hamming_knn: k must be at least 1");
  require(n < (std::size_t{1} << 32), "gpu::hamming_knn: database of ", n,
          " items exceeds 2^32 - 1");
  if (nq == 0) return;
  const unsigned words = static_cast<unsigned>((bits + 63) / 64);
  const bool tiled = topk_shared_bytes(bits, topk_query_tile) <= 48 * 1024;
  const int tile = tiled ? topk_query_tile : 1;
  const std::size_t blocks = (nq + static_cast<std::size_t>(tile) - 1) / static_cast<std::size_t>(tile);
  require(blocks <= 0x7FFFFFFFu, "gpu::hamming_knn: ", nq, " queries exceed one grid");
  using kernel_t = void (*)(const std::uint64_t*, std::size_t, kernels::word_rows, std::size_t,
                            unsigned, unsigned, std::size_t, std::int32_t*, std::int64_t*);
  kernel_t kernel;
  if (tiled)
    kernel = words == 1   ? kernels::hamming_topk<1, topk_query_tile>
             : words == 2 ? kernels::hamming_topk<2, topk_query_tile>
                          : kernels::hamming_topk<0, topk_query_tile>;
  else
    kernel = kernels::hamming_topk<0, 1>;
  NMHASH_LAUNCH(kernel, static_cast<unsigned>(blocks), topk_block_threads,
                topk_shared_bytes(bits, tile), stream)(d_queries, nq, kernels::word_rows{d_db, words}, n,
                                                       words, static_cast<unsigned>(bits), k, d_dist,
                                                       d_idx);
  check_launch("hamming_topk");
}

namespace detail {

template <int G>
void byte_knn_launch(const std::uint64_t* d_queries, std::size_t nq, const unsigned char* d_db, std::size_t n,
                     std::size_t bits, std::size_t k, std::int32_t* d_dist, std::int64_t* d_idx,
                     cudaStream_t stream) {
  const unsigned words = static_cast<unsigned>((bits + 63) / 64), bytes = static_cast<unsigned>((bits + 7) / 8);
  const bool tiled = topk_shared_bytes(bits, topk_query_tile) <= 48 * 1024;
  const int tile = tiled ? topk_query_tile : 1;
  const std::size_t blocks = (nq + static_cast<std::size_t>(tile) - 1) / static_cast<std::size_t>(tile);
  require(blocks <= 0x7FFFFFFFu, "gpu::hamming_knn_bytes: ", nq, " queries exceed one grid");
  using kernel_t = void (*)(const std::uint64_t*, std::size_t, kernels::byte_rows<G>, std::size_t, unsigned,
                            unsigned, std::size_t, std::int32_t*, std::int64_t*);
  kernel_t kernel;
  if (tiled)
    kernel = words == 1 ? kernels::hamming_topk<1, topk_query_tile, kernels::byte_rows<G>>
                        : kernels::hamming_topk<0, topk_query_tile, kernels::byte_rows<G>>;
  else
    kernel = kernels::hamming_topk<0, 1, kernels::byte_rows<G>>;
  NMHASH_LAUNCH(kernel, static_cast<unsigned>(blocks), topk_block_threads, topk_shared_bytes(bits, tile),
                stream)(d_queries, nq, kernels::byte_rows<G>{d_db, bytes}, n, words, static_cast<unsigned>(bits), k,
                        d_dist, d_idx);
  check_launch("hamming_topk");
}

}  // namespace detail

// hamming_knn over a database of ceil(bits / 8) bytes per code, back to
// back (binary_index's layout); the queries in the packed_codes layout.
// The same results as hamming_knn.
inline void hamming_knn_bytes(const std::uint64_t* d_queries, std::size_t nq, const unsigned char* d_db,
                              std::size_t n, std::size_t bits, std::size_t k, std::int32_t* d_dist,
                              std::int64_t* d_idx, cudaStream_t stream) {
  require(bits >= 1 && bits <= 4096, "gpu::hamming_knn_bytes: K = ", bits, " outside [1, 4096]");
  require(k >= 1, "gpu::hamming_knn_bytes: k must be at least 1");
  require(n < (std::size_t{1} << 32), "gpu::hamming_knn_bytes: database of ", n, " items exceeds 2^32 - 1");
  if (nq == 0) return;
  const std::size_t bytes = (bits + 7) / 8;
  if (bytes % 8 == 0)
    detail::byte_knn_launch<8>(d_queries, nq, d_db, n, bits, k, d_dist, d_idx, stream);
  else if (bytes % 4 == 0)
    detail::byte_knn_launch<4>(d_queries, nq, d_db, n, bits, k, d_dist, d_idx, stream);
  else if (bytes % 2 == 0)
    detail::byte_knn_launch<2>(d_queries, nq, d_db, n, bits, k, d_dist, d_idx, stream);
  else
    detail::byte_knn_launch<1>(d_queries, nq, d_db, n, bits, k, d_dist, d_idx, stream);
}

}  // namespace nmhash::gpu
