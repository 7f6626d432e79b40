// Leave-one-bit-out MAP on the device, tie-aware: for every bit k the MAP
// with bit k deleted from all codes, all K values from one pass over the
// database (the CPU's leave_one_bit_out_map with tie_rule::aware).
//
// One block per query. Each warp takes 32 items at a time: every lane forms
// its item's XOR word(s) and histogram cell (2 h + r); then, item by item,
// the warp broadcasts the cell and XOR word (__shfl_sync) and lane l adds
// bits l and l + 32 of it into the cell's row of per-bit counters in shared
// memory (a warp-wide atomic to 32 consecutive words, one bank each). After
// the pass, thread k evaluates the closed-form tie-aware AP of the histogram
// without bit k, n[h][r] - c[h][r][k] + c[h+1][r][k], reading the shared
// counters in place.
//
// Codes of up to 128 bits (the counters must fit in shared memory:
// 2 (K + 1) rows of 64 ceil(K / 64) words, 132 KB at K = 128).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/cuda/device_utils.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/map.cuh"
#include "nmhash/retrieval/average_precision.hpp"

namespace nmhash::gpu {

namespace detail {

// Histogram without bit k: count(h, r) = n[h][r] - c[h][r][k] + c[h+1][r][k].
struct cells_without_bit {
  const unsigned* counts;  // 2 (K + 1)
  const unsigned* bit_counts;  // 2 (K + 1) rows of `row` words
  unsigned row;
  unsigned k;
  NMHASH_HOST_DEVICE double operator()(int h, int r) const {
    const unsigned cell = 2u * static_cast<unsigned>(h) + static_cast<unsigned>(r);
    return static_cast<double>(counts[cell] - bit_counts[cell * row + k] +
                               bit_counts[(cell + 2) * row + k]);
  }
};

}  // namespace detail

namespace kernels {

// out: column-major nq x (K + 1): column k = AP without bit k, column K =
// AP with all bits. Dynamic shared memory: 2 (K + 1) (1 + 64 W) unsigned.
template <int W, class Rel>
__global__ void loo_average_precision(const std::uint64_t* __restrict__ queries,
                                      const std::uint64_t* __restrict__ db, std::size_t n,
                                      unsigned bits, Rel rel, double* __restrict__ out) {
  NMHASH_DYNAMIC_SHARED(unsigned, smem);
  const unsigned cells = 2 * (bits + 1), row = 64 * W;
  unsigned* counts = smem;
  unsigned* bit_counts = smem + cells;
  const std::size_t query = blockIdx.x, nq = gridDim.x;
  const std::uint64_t* q = queries + query * W;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = blockDim.x / 32;

  for (unsigned i = tid; i < cells * (1 + row); i += blockDim.x) smem[i] = 0;
  __syncthreads();
  for (std::size_t base = static_cast<std::size_t>(warp) * 32; base < n;
       base += static_cast<std::size_t>(warps) * 32) {
    const std::size_t j = base + lane;
    const bool valid = j < n;
    std::uint64_t x[W];
    unsigned d = 0;
    for (int w = 0; w < W; ++w) {
      x[w] = valid ? q[w] ^ db[j * W + w] : 0;
      d += static_cast<unsigned>(popcount64(x[w]));
    }
    const unsigned cell = valid ? 2 * d + (rel(query, j) ? 1u : 0u) : cells;
    if (valid) atomicAdd(&counts[cell], 1u);
    for (unsigned i = 0; i < 32; ++i) {
      const unsigned ci = __shfl_sync(0xFFFFFFFFu, cell, static_cast<int>(i));
      if (ci == cells) break;  // items are valid up to the database's end
      unsigned* row_ptr = bit_counts + ci * row;
      for (int w = 0; w < W; ++w) {
        const std::uint64_t xi = __shfl_sync(0xFFFFFFFFu, x[w], static_cast<int>(i));
        if (xi >> lane & 1u) atomicAdd(&row_ptr[64 * w + lane], 1u);
        if (xi >> (lane + 32) & 1u) atomicAdd(&row_ptr[64 * w + 32 + lane], 1u);
      }
    }
  }
  __syncthreads();
  for (unsigned k = tid; k <= bits; k += blockDim.x) {
    double ap;
    if (k == bits)
      ap = tie_aware_ap(counts, static_cast<int>(bits), harmonic_series{});
    else
      ap = tie_aware_ap_of(detail::cells_without_bit{counts, bit_counts, row, k},
                           static_cast<int>(bits) - 1, harmonic_series{});
    out[static_cast<std::size_t>(k) * nq + query] = ap;
  }
}

}  // namespace kernels

inline constexpr unsigned loo_block_threads = 256;

// Bytes of caller-owned device workspace leave_one_bit_out_map needs.
inline std::size_t loo_workspace_bytes(std::size_t nq, std::size_t bits) {
  return nq * (bits + 1) * sizeof(double);
}

// Dynamic shared memory the kernel needs for codes of `bits` bits.
inline std::size_t loo_shared_bytes(std::size_t bits) {
  return 2 * (bits + 1) * (1 + 64 * ((bits + 63) / 64)) * sizeof(unsigned);
}

// Tie-aware leave-one-bit-out MAP of nq queries against n database codes
// (device arrays, packed_codes layout), 2 <= bits <= 128. d_out receives
// bits + 1 doubles: MAP without bit k for k = 0..bits-1, then the MAP with
// all bits. Query the workspace size with loo_workspace_bytes(nq, bits).
template <class Rel>
void leave_one_bit_out_map(const std::uint64_t* d_queries, std::size_t nq,
                           const std::uint64_t* d_db, std::size_t n, std::size_t bits, Rel rel,
                           double* d_out, void* d_workspace, std::size_t workspace_bytes,
                           cudaStream_t stream) {
  require(bits >= 2 && bits <= 128, "gpu::leave_one_bit_out_map: K = ", bits,
          " outside [2, 128] (per-bit counters live in shared memory)");
  require(workspace_bytes >= loo_workspace_bytes(nq, bits),
          "gpu::leave_one_bit_out_map: workspace of ", workspace_bytes, " bytes, needs ",
          loo_workspace_bytes(nq, bits));
  require(n < (std::size_t{1} << 32), "gpu::leave_one_bit_out_map: database of ", n,
          " items exceeds 2^32 - 1");
  require(nq <= 0x7FFFFFFFu, "gpu::leave_one_bit_out_map: ", nq, " queries exceed one grid");
  auto* per_query = static_cast<double*>(d_workspace);
  const std::size_t shared = loo_shared_bytes(bits);
  if (nq > 0) {
    const auto kernel = bits <= 64 ? kernels::loo_average_precision<1, Rel>
                                   : kernels::loo_average_precision<2, Rel>;
    NMHASH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(shared)));
    NMHASH_LAUNCH(kernel, static_cast<unsigned>(nq), loo_block_threads, shared, stream)(
        d_queries, d_db, n, static_cast<unsigned>(bits), rel, per_query);
    check_launch("loo_average_precision");
  }
  column_means(per_query, nq, static_cast<unsigned>(bits + 1), d_out, stream);
}

}  // namespace nmhash::gpu
