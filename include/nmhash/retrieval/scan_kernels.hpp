// Vector top-k scan kernels for 64-bit codes (8 bytes each, contiguous: a
// packed_codes matrix of one word per code, or a binary_index of K in
// 57..64): AVX2 (nibble-table popcount, 16 codes per threshold test) and
// AVX-512 VPOPCNTDQ (32 codes per test). They are reached only through
// with_isa() at the matching level; each compiles for its own instruction
// set whatever the translation unit's flags.
//
// Selector: a type with threshold() and accept(d, j) (detail::topk_selector).
// Contract (as the scalar scan): every code j in [begin, end) with distance
// d < threshold() at its turn is accepted, in ascending j.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/config.hpp"
#include "nmhash/core/cpu.hpp"

#if NMHASH_X86_DISPATCH
#include <immintrin.h>
#endif

namespace nmhash::detail {

#if NMHASH_X86_DISPATCH

// Accepts, in order, the codes j0 + u (u < count) whose distance d[u] is
// below the threshold; updates hstar.
template <class Selector>
inline void accept_below(Selector& sel, const std::uint64_t* d, std::size_t count, std::size_t j0, int& hstar) {
  for (std::size_t u = 0; u < count; ++u)
    if (static_cast<int>(d[u]) < hstar) {
      sel.accept(static_cast<int>(d[u]), static_cast<std::int64_t>(j0 + u));
      hstar = sel.threshold();
    }
}

// The scalar scan of the 8-byte codes [j, end) that a vector loop leaves.
template <class Selector>
inline void knn_scan8_rest(Selector& sel, std::uint64_t q, const std::uint8_t* codes, std::size_t j, std::size_t end,
                           int hstar) {
  for (; j < end; ++j) {
    std::uint64_t c;
    std::memcpy(&c, codes + j * 8, 8);
    const int d = popcount64(q ^ c);
    if (d < hstar) {
      sel.accept(d, static_cast<std::int64_t>(j));
      hstar = sel.threshold();
    }
  }
}

// Per-64-bit-lane popcount of x (nibble table, then byte sums).
NMHASH_TARGET_AVX2 inline __m256i popcount_lanes_avx2(__m256i x) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(x, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
  const __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi));
  return _mm256_sad_epu8(bytes, _mm256_setzero_si256());
}

template <class Selector>
NMHASH_TARGET_AVX2 void knn_scan8_avx2(Selector& sel, std::uint64_t q, const std::uint8_t* codes,
                                       std::size_t begin, std::size_t end) {
  const __m256i qv = _mm256_set1_epi64x(static_cast<long long>(q));
  int hstar = sel.threshold();
  __m256i th = _mm256_set1_epi64x(hstar);
  std::size_t j = begin;
  for (; j + 16 <= end; j += 16) {
    const std::uint8_t* p = codes + j * 8;
    const __m256i d0 = popcount_lanes_avx2(
        _mm256_xor_si256(qv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
    const __m256i d1 = popcount_lanes_avx2(
        _mm256_xor_si256(qv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))));
    const __m256i d2 = popcount_lanes_avx2(
        _mm256_xor_si256(qv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64))));
    const __m256i d3 = popcount_lanes_avx2(
        _mm256_xor_si256(qv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 96))));
    // Lane sums are below 65, so 32-bit minima of the 64-bit lanes are exact.
    const __m256i mn = _mm256_min_epu32(_mm256_min_epu32(d0, d1), _mm256_min_epu32(d2, d3));
    const __m256i below = _mm256_cmpgt_epi32(th, mn);
    if (NMHASH_UNLIKELY(!_mm256_testz_si256(below, below))) {
      alignas(32) std::uint64_t d[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(d), d0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(d + 4), d1);
      _mm256_store_si256(reinterpret_cast<__m256i*>(d + 8), d2);
      _mm256_store_si256(reinterpret_cast<__m256i*>(d + 12), d3);
      accept_below(sel, d, 16, j, hstar);
      th = _mm256_set1_epi64x(hstar);
    }
  }
  knn_scan8_rest(sel, q, codes, j, end, hstar);
}

template <class Selector>
NMHASH_TARGET_AVX512 void knn_scan8_avx512(Selector& sel, std::uint64_t q, const std::uint8_t* codes,
                                           std::size_t begin, std::size_t end) {
  const __m512i qv = _mm512_set1_epi64(static_cast<long long>(q));
  int hstar = sel.threshold();
  __m512i th = _mm512_set1_epi64(hstar);
  std::size_t j = begin;
  for (; j + 32 <= end; j += 32) {
    const std::uint8_t* p = codes + j * 8;
    const __m512i d0 = _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p)));
    const __m512i d1 = _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + 64)));
    const __m512i d2 = _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + 128)));
    const __m512i d3 = _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + 192)));
    const __mmask8 below = static_cast<__mmask8>(_mm512_cmplt_epu64_mask(d0, th) | _mm512_cmplt_epu64_mask(d1, th) |
                                                 _mm512_cmplt_epu64_mask(d2, th) | _mm512_cmplt_epu64_mask(d3, th));
    if (NMHASH_UNLIKELY(below != 0)) {
      alignas(64) std::uint64_t d[32];
      _mm512_store_si512(d, d0);
      _mm512_store_si512(d + 8, d1);
      _mm512_store_si512(d + 16, d2);
      _mm512_store_si512(d + 24, d3);
      accept_below(sel, d, 32, j, hstar);
      th = _mm512_set1_epi64(hstar);
    }
  }
  knn_scan8_rest(sel, q, codes, j, end, hstar);
}

#endif  // NMHASH_X86_DISPATCH

// Top-k scan of the 8-byte codes [begin, end) at level L with the vector
// kernel; returns false (and does nothing) where level L has none.
template <isa L, class Selector>
bool knn_scan8_vector(Selector& sel, std::uint64_t q, const std::uint8_t* codes, std::size_t begin,
                      std::size_t end) {
#if NMHASH_X86_DISPATCH
  if constexpr (L == isa::avx512) {
    knn_scan8_avx512(sel, q, codes, begin, end);
    return true;
  } else if constexpr (L == isa::avx2) {
    knn_scan8_avx2(sel, q, codes, begin, end);
    return true;
  }
#endif
  (void)sel, (void)q, (void)codes, (void)begin, (void)end;
  return false;
}

}  // namespace nmhash::detail
