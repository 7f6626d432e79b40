// The CUDA API for nmhash's kernels and launchers: <cuda_runtime.h> under
// nvcc, or the test-only SIMT execution layer when NMHASH_SIMT is defined
// (the same kernel source then runs on the CPU). Also the two spellings
// that differ between them: a kernel launch and dynamic shared memory.
#pragma once

#if defined(NMHASH_SIMT)
#include "nmhash_simt/cuda_shim.hpp"
#else
#include <cuda_runtime.h>
// NMHASH_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...)
#define NMHASH_LAUNCH(kernel, grid, block, shared, stream) kernel<<<(grid), (block), (shared), (stream)>>>
#define NMHASH_DYNAMIC_SHARED(type, name)                              \
  extern __shared__ __align__(16) unsigned char nmhash_dynamic_smem[]; \
  type* name = reinterpret_cast<type*>(nmhash_dynamic_smem)
#endif

