// Packing on the device: real-valued network outputs (n rows of K floats,
// row-major) into packed codes (n rows of ceil(K/64) words, the layout of
// nmhash::packed_codes) by sign, sgn(0) = +1.
//
// One warp builds one 64-bit word: lane l tests columns 64w + l and
// 64w + 32 + l, and two ballots assemble the word. Reads are coalesced
// (32 consecutive floats per ballot), each word is written once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/cuda/device_utils.cuh"

namespace nmhash::gpu {

namespace kernels {

// Kernels are templates so that a header included by several translation
// units defines each instantiation once (as CUB's do).
template <class T>
__global__ void pack_signs(const T* __restrict__ x, std::size_t n, std::size_t k,
                           std::uint64_t* __restrict__ codes) {
  const std::size_t words = (k + 63) / 64;
  const std::size_t warp = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (warp >= n * words) return;  // whole warps exit together
  const std::size_t row = warp / words, w = warp % words;
  const std::size_t c0 = 64 * w + lane, c1 = c0 + 32;
  const T* xr = x + row * k;
  const bool b0 = c0 < k && xr[c0] >= T(0);
  const bool b1 = c1 < k && xr[c1] >= T(0);
  const unsigned lo = __ballot_sync(0xFFFFFFFFu, b0);
  const unsigned hi = __ballot_sync(0xFFFFFFFFu, b1);
  if (lane == 0) codes[warp] = static_cast<std::uint64_t>(hi) << 32 | lo;
}

}  // namespace kernels

inline constexpr unsigned pack_block_threads = 256;

// d_x: n x k values (float or double) on the device; d_codes: n x
// ceil(k/64) words. NaN packs as -1 (a kernel cannot throw; the CPU
// pack_signs rejects NaN).
template <class T>
void pack_signs(const T* d_x, std::size_t n, std::size_t k, std::uint64_t* d_codes,
                cudaStream_t stream) {
  const std::size_t words = n * ((k + 63) / 64);
  if (words == 0) return;
  const std::size_t warps_per_block = pack_block_threads / 32;
  const auto blocks = static_cast<unsigned>((words + warps_per_block - 1) / warps_per_block);
  NMHASH_LAUNCH(kernels::pack_signs<T>, blocks, pack_block_threads, 0, stream)(d_x, n, k, d_codes);
  check_launch("pack_signs");
}

}  // namespace nmhash::gpu
