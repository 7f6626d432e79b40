// Build-time configuration shared by every nmhash header: version, the
// host/device function marker, and the compiler feature switches the fast
// paths key on.
#pragma once

#define NMHASH_VERSION_MAJOR 0
#define NMHASH_VERSION_MINOR 1
#define NMHASH_VERSION_PATCH 0

// Logic that runs both on the host and inside CUDA kernels is marked with
// NMHASH_HOST_DEVICE; without nvcc it expands to nothing.
#if defined(__CUDACC__)
#define NMHASH_HOST_DEVICE __host__ __device__
#else
#define NMHASH_HOST_DEVICE
#endif

// Before a __host__ __device__ template that may be instantiated with a
// host-only argument type (nvcc checks the call only where it is used on the
// device).
#if defined(__CUDACC__) && !defined(__clang__)
#define NMHASH_HD_TEMPLATE _Pragma("nv_exec_check_disable")
#else
#define NMHASH_HD_TEMPLATE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NMHASH_RESTRICT __restrict__
#define NMHASH_NOINLINE __attribute__((noinline))
#define NMHASH_LIKELY(x) __builtin_expect(!!(x), 1)
#define NMHASH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define NMHASH_RESTRICT
#define NMHASH_NOINLINE
#define NMHASH_LIKELY(x) (x)
#define NMHASH_UNLIKELY(x) (x)
#endif
