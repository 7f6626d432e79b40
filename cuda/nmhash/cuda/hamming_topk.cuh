// Exact Hamming k-nearest-neighbour search on the device, with the CPU
// path's results and tie order: per query the k smallest distances, sorted
// by (distance, ascending database index); k may exceed N (padding:
// distance INT32_MAX, index -1).
//
// One block per query, fused:
//  1. distance pass: every thread takes items j = t, t + blockDim, ... and
//     counts distances into a shared-memory histogram of K + 1 bins;
//  2. threshold: thread 0 turns the histogram into exclusive offsets and
//     finds h*, the smallest distance whose cumulative count reaches k;
//  3. compaction pass in index order, blockDim items per step: each warp
//     groups its lanes by distance (__match_any_sync), ranks them within the
//     group, and the warps claim their offsets in order, so every item at
//     distance <= h* lands at its final sorted position directly. Steps with
//     no candidate skip the ordered claim (__syncthreads_count).
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

// Dynamic shared memory: (bits + 1) unsigned counters, then offsets.
template <int W>
__global__ void hamming_topk(const std::uint64_t* __restrict__ queries,
                             const std::uint64_t* __restrict__ db, std::size_t n, unsigned words,
                             unsigned bits, std::size_t k, std::int32_t* __restrict__ out_dist,
                             std::int64_t* __restrict__ out_idx) {
  NMHASH_DYNAMIC_SHARED(unsigned, offset);
  __shared__ unsigned s_threshold;
  const std::size_t query = blockIdx.x;
  const std::uint64_t* q = queries + query * words;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const unsigned warps = blockDim.x / 32;
  const std::size_t kk = k < n ? k : n;

  for (unsigned h = tid; h <= bits; h += blockDim.x) offset[h] = 0;
  __syncthreads();
  for (std::size_t j = tid; j < n; j += blockDim.x)
    atomicAdd(&offset[hamming_words<W>(q, db + j * words, words)], 1u);
  __syncthreads();
  if (tid == 0) {
    unsigned cum = 0;
    unsigned threshold = bits + 1;
    for (unsigned h = 0; h <= bits; ++h) {
      const unsigned c = offset[h];
      offset[h] = cum;
      if (threshold > bits && cum + c >= kk) threshold = h;
      cum += c;
    }
    s_threshold = kk == 0 ? 0 : threshold;
  }
  __syncthreads();
  const unsigned threshold = s_threshold;
  std::int32_t* od = out_dist + query * k;
  std::int64_t* oi = out_idx + query * k;

  for (std::size_t c0 = 0; c0 < n && kk > 0; c0 += blockDim.x) {
    const std::size_t j = c0 + tid;
    const unsigned d = j < n ? hamming_words<W>(q, db + j * words, words) : bits + 1;
    const bool keep = d <= threshold;
    if (__syncthreads_count(keep) == 0) continue;
    const unsigned group = __match_any_sync(0xFFFFFFFFu, keep ? d : bits + 1);
    const unsigned rank = __popc(group & lanemask_lt());
    const int leader = __ffs(static_cast<int>(group)) - 1;
    for (unsigned w = 0; w < warps; ++w) {
      if (warp == w) {
        unsigned base = 0;
        if (keep && static_cast<int>(lane) == leader) {
          base = offset[d];
          offset[d] = base + static_cast<unsigned>(__popc(group));
        }
        base = __shfl_sync(0xFFFFFFFFu, base, leader);
        const unsigned pos = base + rank;
        if (keep && pos < kk) {
          od[pos] = static_cast<std::int32_t>(d);
          oi[pos] = static_cast<std::int64_t>(j);
        }
      }
      __syncthreads();
    }
  }
  for (std::size_t r = kk + tid; r < k; r += blockDim.x) {
    od[r] = 2147483647;
    oi[r] = -1;
  }
}

}  // namespace kernels

inline constexpr unsigned topk_block_threads = 256;

// Top-k of nq queries against n database codes of `bits` bits, all arrays
// on the device (codes in the packed_codes layout). Writes nq x k distances
// and indices. Needs no global workspace; uses (bits + 1) * 4 bytes of
// dynamic shared memory per block.
inline void hamming_knn(const std::uint64_t* d_queries, std::size_t nq,
                        const std::uint64_t* d_db, std::size_t n, std::size_t bits,
                        std::size_t k, std::int32_t* d_dist, std::int64_t* d_idx,
                        cudaStream_t stream) {
  require(bits >= 1 && bits <= 4096, "gpu::hamming_knn: K = ", bits, " outside [1, 4096]");
  require(k >= 1, "gpu::hamming_knn: k must be at least 1");
  if (nq == 0) return;
  require(nq <= 0x7FFFFFFFu, "gpu::hamming_knn: ", nq, " queries exceed one grid");
  require(n < (std::size_t{1} << 32), "gpu::hamming_knn: database of ", n,
          " items exceeds 2^32 - 1");
  const unsigned words = static_cast<unsigned>((bits + 63) / 64);
  const std::size_t shared = (bits + 1) * sizeof(unsigned);
  const auto grid = static_cast<unsigned>(nq);
  const auto b = static_cast<unsigned>(bits);
  if (words == 1)
    NMHASH_LAUNCH(kernels::hamming_topk<1>, grid, topk_block_threads, shared, stream)(
        d_queries, d_db, n, words, b, k, d_dist, d_idx);
  else if (words == 2)
    NMHASH_LAUNCH(kernels::hamming_topk<2>, grid, topk_block_threads, shared, stream)(
        d_queries, d_db, n, words, b, k, d_dist, d_idx);
  else
    NMHASH_LAUNCH(kernels::hamming_topk<0>, grid, topk_block_threads, shared, stream)(
        d_queries, d_db, n, words, b, k, d_dist, d_idx);
  check_launch("hamming_topk");
}

}  // namespace nmhash::gpu
