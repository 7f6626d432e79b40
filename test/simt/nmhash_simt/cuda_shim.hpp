// Test-only SIMT execution layer: the CUDA built-ins nmhash's kernels use,
// implemented on the CPU so that the very kernel source nvcc compiles runs
// under a host compiler. Included (through nmhash/cuda/runtime.cuh) instead
// of <cuda_runtime.h> when NMHASH_SIMT is defined.
//
// Covered: __global__/__device__/__host__/__forceinline__, static __shared__
// (one copy per OS thread, which runs one block at a time) and dynamic shared
// memory (NMHASH_DYNAMIC_SHARED), threadIdx/blockIdx/blockDim/gridDim,
// __syncthreads, __syncthreads_count/_or, __syncwarp, __shfl_sync, __shfl_up_sync, __shfl_down_sync,
// __shfl_xor_sync, __ballot_sync, __any_sync, __all_sync, __match_any_sync,
// atomicAdd/atomicMax/atomicMin/atomicOr, __popc, __popcll, __ffsll, __clz,
// and the few runtime calls the launchers and the device API make
// (cudaMalloc/cudaFree/cudaMemcpy on host memory, cudaMemsetAsync,
// cudaMemcpyAsync, cudaFuncSetAttribute, cudaGetLastError,
// cudaGetErrorName/String).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "nmhash_simt/fiber_block.hpp"

#define NMHASH_SIMT_ACTIVE 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __launch_bounds__(...)

#define threadIdx (::nmhash::simt::detail::thread_idx())
#define blockIdx (::nmhash::simt::block::current_block()->block_idx())
#define blockDim (::nmhash::simt::block::current_block()->block_dim())
#define gridDim (::nmhash::simt::block::current_block()->grid_dim())

namespace nmhash::simt::detail {
inline dim3 thread_idx() { return block::current_block()->self().thread_idx; }
}  // namespace nmhash::simt::detail

using ::nmhash::simt::dim3;

// ---- runtime subset ---------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorLaunchFailure = 719
};
typedef struct nmhash_simt_stream* cudaStream_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

inline cudaError_t& nmhash_simt_last_error() {
  static thread_local cudaError_t e = cudaSuccess;
  return e;
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = nmhash_simt_last_error();
  nmhash_simt_last_error() = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return nmhash_simt_last_error(); }
inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    default: return "cudaErrorLaunchFailure";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return "unspecified launch failure";
  }
}
inline cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t = nullptr) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind,
                                   cudaStream_t = nullptr) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
// "Device" memory is host memory.
inline cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = std::malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
// Shared memory is host memory here: any size is accepted.
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int) {
  return cudaSuccess;
}

// ---- synchronisation and warp intrinsics -----------------------------------
inline void __syncthreads() { ::nmhash::simt::block::current_block()->syncthreads(); }
inline int __syncthreads_count(int pred) {
  return ::nmhash::simt::block::current_block()->syncthreads_count(pred);
}
inline int __syncthreads_or(int pred) { return __syncthreads_count(pred) != 0; }

inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  ::nmhash::simt::block::current_block()->warp_exchange(mask, 0, [](const std::uint64_t*) { return 0; });
}

namespace nmhash::simt::detail {
template <class T>
std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp shuffle of a type wider than 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
inline unsigned lane_id() { return block::current_block()->self().linear % 32; }

// Shuffle: the value of lane src(lane) within this lane's segment of
// `width` lanes; a source outside the segment returns the lane's own value.
template <class T, class Src>
T shuffle(unsigned mask, T var, int width, Src src) {
  const unsigned lane = lane_id();
  const std::uint64_t mine = to_bits(var);
  return from_bits<T>(block::current_block()->warp_exchange(mask, mine, [&](const std::uint64_t* s) {
    const int base = static_cast<int>(lane) / width * width;
    const int from = src(static_cast<int>(lane) - base);
    if (from < 0 || from >= width) return mine;
    return s[base + from];
  }));
}
}  // namespace nmhash::simt::detail

template <class T>
T __shfl_sync(unsigned mask, T var, int src, int width = 32) {
  return ::nmhash::simt::detail::shuffle(mask, var, width, [&](int) { return ((src % width) + width) % width; });
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ::nmhash::simt::detail::shuffle(mask, var, width, [&](int l) { return l - static_cast<int>(delta); });
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ::nmhash::simt::detail::shuffle(mask, var, width, [&](int l) { return l + static_cast<int>(delta); });
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  return ::nmhash::simt::detail::shuffle(mask, var, width, [&](int l) { return l ^ lane_mask; });
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
  return ::nmhash::simt::block::current_block()->warp_exchange(mask, pred != 0, [mask](const std::uint64_t* s) {
    unsigned b = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1u) && s[l]) b |= 1u << l;
    return b;
  });
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

template <class T>
unsigned __match_any_sync(unsigned mask, T value) {
  const std::uint64_t mine = ::nmhash::simt::detail::to_bits(value);
  return ::nmhash::simt::block::current_block()->warp_exchange(mask, mine, [mask, mine](const std::uint64_t* s) {
    unsigned b = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1u) && s[l] == mine) b |= 1u << l;
    return b;
  });
}

// ---- atomics (real atomics: blocks may run on several OS threads) ----------
template <class T>
T atomicAdd(T* p, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    // The generic compare-exchange: the _n form takes integers only.
    T old, desired;
    __atomic_load(p, &old, __ATOMIC_SEQ_CST);
    do {
      desired = old + v;
    } while (!__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return old;
  } else {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
  }
}
template <class T>
T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
template <class T>
T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
template <class T>
T atomicMin(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- bit intrinsics ----------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline unsigned __lanemask_lt_simt() { return (1u << ::nmhash::simt::detail::lane_id()) - 1u; }

// ---- launching ---------------------------------------------------------------
namespace nmhash::simt {

struct launch_config {
  dim3 grid, block;
  std::size_t shared = 0;
  std::size_t stack_bytes = 64 * 1024;
};

// Runs kernel(args...) for every block of the grid, blocks in order on the
// calling thread, every CUDA thread a fiber.
template <class Kernel, class... Args>
void launch(const launch_config& cfg, Kernel kernel, Args... args) {
  if (cfg.block.count() == 0 || cfg.block.count() > 1024 || cfg.grid.count() == 0) {
    nmhash_simt_last_error() = cudaErrorInvalidValue;
    return;
  }
  const std::function<void()> body = [&] { kernel(args...); };
  for (unsigned z = 0; z < cfg.grid.z; ++z)
    for (unsigned y = 0; y < cfg.grid.y; ++y)
      for (unsigned x = 0; x < cfg.grid.x; ++x) {
        block b(cfg.grid, cfg.block, dim3(x, y, z), cfg.shared, cfg.stack_bytes);
        b.run(body);
      }
}

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(block::current_block()->dynamic_shared());
}

}  // namespace nmhash::simt

// The launch of the launchers: kernel<<<grid, block, shared, stream>>>(args).
#define NMHASH_LAUNCH(kernel, grid, block, shared, stream)                                \
  [&](auto&&... nmhash_args) {                                                            \
    (void)(stream);                                                                       \
    ::nmhash::simt::launch(::nmhash::simt::launch_config{dim3(grid), dim3(block), (shared)}, \
                           kernel, nmhash_args...);                                       \
  }
#define NMHASH_DYNAMIC_SHARED(type, name) type* name = ::nmhash::simt::dynamic_shared<type>()
