// Small device helpers and the launch check shared by nmhash's kernels.
#pragma once

#include "nmhash/cuda/error.cuh"

namespace nmhash::gpu {

// Lanes of this thread's warp below it.
__device__ __forceinline__ unsigned lanemask_lt() {
  return (1u << (threadIdx.x % 32)) - 1u;
}

// Checks the launch just made (configuration errors surface here).
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw cuda_error(e, detail::concat("launch of ", kernel, " failed: ", cudaGetErrorName(e), ": ",
                                       cudaGetErrorString(e)));
}

}  // namespace nmhash::gpu
