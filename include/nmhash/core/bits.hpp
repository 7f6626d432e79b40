// Word-level bit primitives (population count) usable on the host and in
// CUDA device code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/core/config.hpp"

namespace nmhash {

NMHASH_HOST_DEVICE inline int popcount64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#else
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
#endif
}

// Index of the lowest set bit; x must be non-zero.
NMHASH_HOST_DEVICE inline int ctz64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(x)) - 1;
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  int n = 0;
  while (!(x & 1u)) {
    x >>= 1;
    ++n;
  }
  return n;
#endif
}

// Number of 64-bit words that hold `bits` bits.
NMHASH_HOST_DEVICE constexpr std::size_t words_for_bits(std::size_t bits) {
  return bits / 64 + (bits % 64 != 0);
}

}  // namespace nmhash
