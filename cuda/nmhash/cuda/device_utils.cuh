// Small device helpers and the launch check shared by nmhash's kernels.
#pragma once

#include <cstddef>

#include "nmhash/cuda/error.cuh"

namespace nmhash::gpu {

// Lanes of this thread's warp below it.
__device__ __forceinline__ unsigned lanemask_lt() {
  return (1u << (threadIdx.x % 32)) - 1u;
}

namespace kernels {

// The sum of v over the block, returned on thread 0 (blockDim.x a multiple
// of 32): a shuffle tree per warp, then the warps in order. s_warp: 32
// doubles of shared memory; the block may call it again with the same one.
__device__ __forceinline__ double block_sum(double v, double* s_warp) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  __syncthreads();
  if (threadIdx.x % 32 == 0) s_warp[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0;
  if (threadIdx.x == 0)
    for (unsigned w = 0; w < blockDim.x / 32; ++w) total += s_warp[w];
  return total;
}

// out[c] = mean of column c of a column-major n x m matrix (column c is
// data[c * n .. c * n + n)); one block per column. 0 for n = 0.
template <int Unused = 0>
__global__ void column_means(const double* __restrict__ data, std::size_t n,
                             double* __restrict__ out) {
  __shared__ double s_warp[32];
  const double* col = data + static_cast<std::size_t>(blockIdx.x) * n;
  double s = 0;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) s += col[i];
  const double total = block_sum(s, s_warp);
  if (threadIdx.x == 0) out[blockIdx.x] = n > 0 ? total / static_cast<double>(n) : 0.0;
}

}  // namespace kernels

// Checks the launch just made (configuration errors surface here).
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw cuda_error(e, detail::concat("launch of ", kernel, " failed: ", cudaGetErrorName(e), ": ",
                                       cudaGetErrorString(e)));
}

inline constexpr unsigned reduce_block_threads = 256;

// d_out[c] = mean over the n rows of column c of the column-major n x m
// device matrix d_data.
inline void column_means(const double* d_data, std::size_t n, unsigned m, double* d_out,
                         cudaStream_t stream) {
  if (m == 0) return;
  NMHASH_LAUNCH(kernels::column_means<0>, m, reduce_block_threads, 0, stream)(d_data, n, d_out);
  check_launch("column_means");
}

}  // namespace nmhash::gpu
