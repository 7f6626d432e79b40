// Mean average precision on the device, both tie conventions of the CPU
// path (nmhash::mean_average_precision), single-label class ids or
// multi-label bitsets.
//
// One block per query, fused:
//  1. distance-relevance histogram of 2 (K + 1) cells in shared memory;
//  2. thread 0: tie-aware AP in closed form from the histogram (the CPU's
//     tie_aware_ap with harmonic_series), and per-distance cursors (items
//     and relevant items at smaller distances);
//  3. index-order pass in chunks of blockDim items: lanes grouped by
//     distance (__match_any_sync) take their rank inside the group, warps
//     claim the cursors in order, and every relevant item adds
//     (rank among relevant) / (rank) to its thread's sum; a block reduction
//     gives the AP (and AP@k over the items ranked <= k).
// A final kernel averages the per-query values.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/cuda/device_utils.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/retrieval/average_precision.hpp"

namespace nmhash::gpu {

// Relevance of database item j to query q on the device.
struct class_id_relevance {
  const std::int32_t* query_ids;
  const std::int32_t* db_ids;
  __device__ __forceinline__ bool operator()(std::size_t q, std::size_t j) const {
    return query_ids[q] == db_ids[j];
  }
};

struct label_set_relevance {
  const std::uint64_t* query_sets;  // nq x words
  const std::uint64_t* db_sets;     // n x words
  unsigned words;
  __device__ __forceinline__ bool operator()(std::size_t q, std::size_t j) const {
    for (unsigned w = 0; w < words; ++w)
      if (query_sets[q * words + w] & db_sets[j * words + w]) return true;
    return false;
  }
};

namespace kernels {

// Per-query results, column-major nq x 4: AP tie-aware, AP index-order,
// AP@k tie-aware, AP@k index-order (k = map_at; 0 = no AP@k).
// Dynamic shared memory: 4 (bits + 1) unsigned (histogram, two cursors).
template <int W, class Rel>
__global__ void __launch_bounds__(256, 4) average_precision(const std::uint64_t* __restrict__ queries,
                                  const std::uint64_t* __restrict__ db, std::size_t n,
                                  unsigned words, unsigned bits, Rel rel, std::size_t map_at,
                                  double* __restrict__ out) {
  NMHASH_DYNAMIC_SHARED(unsigned, smem);
  __shared__ double s_warp_sum[3][32];
  __shared__ unsigned s_relevant;
  unsigned* counts = smem;                 // 2 (bits + 1): counts[2h + r]
  unsigned* cur_all = smem + 2 * (bits + 1);  // bits + 1
  unsigned* cur_rel = cur_all + (bits + 1);   // bits + 1
  const std::size_t query = blockIdx.x, nq = gridDim.x;
  const std::uint64_t* q = queries + query * words;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = blockDim.x / 32;

  for (unsigned c = tid; c < 2 * (bits + 1); c += blockDim.x) counts[c] = 0;
  __syncthreads();
  for (std::size_t j = tid; j < n; j += blockDim.x)
    atomicAdd(&counts[2 * hamming_words<W>(q, db + j * words, words) + (rel(query, j) ? 1 : 0)], 1u);
  __syncthreads();
  if (tid == 0) {
    out[query] = tie_aware_ap(counts, static_cast<int>(bits), harmonic_series{});
    out[2 * nq + query] =
        map_at ? tie_aware_ap_at(counts, static_cast<int>(bits), map_at, harmonic_series{}) : 0.0;
    unsigned all = 0, relevant = 0;
    for (unsigned h = 0; h <= bits; ++h) {
      cur_all[h] = all;
      cur_rel[h] = relevant;
      all += counts[2 * h] + counts[2 * h + 1];
      relevant += counts[2 * h + 1];
    }
    s_relevant = relevant;
  }
  __syncthreads();

  double sum = 0, sum_at = 0, hits_at = 0;
  for (std::size_t c0 = 0; c0 < n; c0 += blockDim.x) {
    const std::size_t j = c0 + tid;
    const bool valid = j < n;
    const unsigned d = valid ? hamming_words<W>(q, db + j * words, words) : bits + 1;
    const bool is_rel = valid && rel(query, j);
    const unsigned group = __match_any_sync(0xFFFFFFFFu, d);
    const unsigned rel_mask = __ballot_sync(0xFFFFFFFFu, is_rel);
    const unsigned lt = lanemask_lt();
    const unsigned rank = __popc(group & lt);
    const unsigned rel_rank = __popc(group & rel_mask & lt);
    const int leader = __ffs(static_cast<int>(group)) - 1;
    for (unsigned w = 0; w < warps; ++w) {
      if (warp == w) {
        unsigned base_all = 0, base_rel = 0;
        if (valid && static_cast<int>(lane) == leader) {
          base_all = cur_all[d];
          base_rel = cur_rel[d];
          cur_all[d] = base_all + static_cast<unsigned>(__popc(group));
          cur_rel[d] = base_rel + static_cast<unsigned>(__popc(group & rel_mask));
        }
        base_all = __shfl_sync(0xFFFFFFFFu, base_all, leader);
        base_rel = __shfl_sync(0xFFFFFFFFu, base_rel, leader);
        if (is_rel) {
          const unsigned pos = base_all + rank + 1;
          const double p = static_cast<double>(base_rel + rel_rank + 1) / static_cast<double>(pos);
          sum += p;
          if (pos <= map_at) {
            sum_at += p;
            hits_at += 1;
          }
        }
      }
      __syncthreads();
    }
  }
  for (int o = 16; o > 0; o /= 2) {
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
    sum_at += __shfl_xor_sync(0xFFFFFFFFu, sum_at, o);
    hits_at += __shfl_xor_sync(0xFFFFFFFFu, hits_at, o);
  }
  if (lane == 0) {
    s_warp_sum[0][warp] = sum;
    s_warp_sum[1][warp] = sum_at;
    s_warp_sum[2][warp] = hits_at;
  }
  __syncthreads();
  if (tid == 0) {
    double total = 0, total_at = 0, total_hits = 0;
    for (unsigned w = 0; w < warps; ++w) {
      total += s_warp_sum[0][w];
      total_at += s_warp_sum[1][w];
      total_hits += s_warp_sum[2][w];
    }
    out[nq + query] = s_relevant > 0 ? total / s_relevant : 0.0;
    out[3 * nq + query] = total_hits > 0 ? total_at / total_hits : 0.0;
  }
}

}  // namespace kernels

inline constexpr unsigned map_block_threads = 256;

// Bytes of caller-owned device workspace mean_average_precision needs.
inline std::size_t map_workspace_bytes(std::size_t nq) { return 4 * nq * sizeof(double); }

// MAP of nq queries against n database codes of `bits` bits (device arrays
// in the packed_codes layout). d_map receives 4 doubles: MAP tie-aware, MAP
// index-order, MAP@k tie-aware, MAP@k index-order (k = map_at; the last two
// are 0 when map_at is 0). Rel: class_id_relevance or label_set_relevance
// over device arrays. Query the workspace size with map_workspace_bytes(nq).
template <class Rel>
void mean_average_precision(const std::uint64_t* d_queries, std::size_t nq,
                            const std::uint64_t* d_db, std::size_t n, std::size_t bits, Rel rel,
                            std::size_t map_at, double* d_map, void* d_workspace,
                            std::size_t workspace_bytes, cudaStream_t stream) {
  require(bits >= 1 && bits <= 4096, "gpu::mean_average_precision: K = ", bits,
          " outside [1, 4096]");
  require(workspace_bytes >= map_workspace_bytes(nq),
          "gpu::mean_average_precision: workspace of ", workspace_bytes, " bytes, needs ",
          map_workspace_bytes(nq));
  require(n < (std::size_t{1} << 32), "gpu::mean_average_precision: database of ", n,
          " items exceeds 2^32 - 1");
  require(nq <= 0x7FFFFFFFu, "gpu::mean_average_precision: ", nq, " queries exceed one grid");
  auto* per_query = static_cast<double*>(d_workspace);
  const unsigned words = static_cast<unsigned>((bits + 63) / 64);
  const std::size_t shared = 4 * (bits + 1) * sizeof(unsigned);
  if (nq > 0) {
    const auto kernel = words == 1   ? kernels::average_precision<1, Rel>
                        : words == 2 ? kernels::average_precision<2, Rel>
                                     : kernels::average_precision<0, Rel>;
    NMHASH_LAUNCH(kernel, static_cast<unsigned>(nq), map_block_threads, shared, stream)(
        d_queries, d_db, n, words, static_cast<unsigned>(bits), rel, map_at, per_query);
    check_launch("average_precision");
  }
  column_means(per_query, nq, 4, d_map, stream);
}

}  // namespace nmhash::gpu
