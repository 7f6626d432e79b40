// Per-bucket positional population count: for every bucket b and bit k, how
// many of the words added to b have bit k set. Leave-one-bit-out MAP uses it
// with one bucket per (distance, relevance) pair to learn, for every bit, how
// many items of each histogram cell differ from the query in that bit.
//
// Words are buffered per bucket in groups of 16 and reduced with a
// Harley-Seal carry-save adder tree into bit-sliced counters (eight planes:
// counts up to 255 per bit); only their overflow is expanded into integer
// counters, so the per-word cost is a few logic operations instead of one
// increment per set bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/config.hpp"
#include "nmhash/core/cpu.hpp"

namespace nmhash::detail {

template <int W>
class bucketed_positional_popcount {
 public:
  static constexpr unsigned group = 16;
  // Bit-sliced planes per word: ones, twos, fours, eights (carry-save
  // adders), then 16s, 32s, 64s and 128s (ripple-carry of each group's
  // sixteens carry). Counts of 256 and more go to the integer counters.
  static constexpr unsigned planes = 8;
  bucketed_positional_popcount(std::size_t buckets, std::size_t words)
      : buckets_(buckets),
        words_(W > 0 ? static_cast<std::size_t>(W) : words),
        added_(buckets, 0),
        buffer_(buckets * group * words_, 0),
        planes_(buckets * planes * words_, 0),
        counts_(buckets * 64 * words_, 0) {}

  void reset() {
    std::fill(added_.begin(), added_.end(), 0u);
    std::fill(planes_.begin(), planes_.end(), 0u);
    std::fill(counts_.begin(), counts_.end(), 0u);
  }

  // Adds the value x (one word per 64 bits) to bucket b.
  void add(std::size_t b, const std::uint64_t* x) {
    std::uint64_t* slot = buffer_.data() + (b * group + (added_[b] % group)) * words_;
    for (std::size_t w = 0; w < words_; ++w) slot[w] = x[w];
    if (++added_[b] % group == 0) flush(b);
  }

  // Number of values added to bucket b.
  std::uint32_t added(std::size_t b) const { return added_[b]; }

  // Folds the partial groups and the planes into the integer counters;
  // afterwards count(b, bit) is exact. Untouched buckets cost nothing.
  void finish() {
    for (std::size_t b = 0; b < buckets_; ++b) {
      if (added_[b] == 0) continue;
      const unsigned fill = added_[b] % group;
      if (fill != 0) {
        std::uint64_t* buf = buffer_.data() + b * group * words_;
        std::fill(buf + fill * words_, buf + group * words_, std::uint64_t{0});
        flush(b);
      }
      std::uint32_t* c = counts_.data() + b * 64 * words_;
      std::uint64_t* p = planes_.data() + b * planes * words_;
      for (std::size_t w = 0; w < words_; ++w)
        for (unsigned level = 0; level < planes; ++level) {
          add_bits(c + 64 * w, p[level * words_ + w], 1u << level);
          p[level * words_ + w] = 0;
        }
    }
  }

  // Number of values added to bucket b with bit `bit` set (after finish()).
  std::uint32_t count(std::size_t b, std::size_t bit) const {
    return counts_[b * 64 * words_ + bit];
  }

 private:
  static void add_bits(std::uint32_t* c, std::uint64_t v, std::uint32_t weight) {
    while (v) {
      c[ctz64(v)] += weight;
      v &= v - 1;
    }
  }

  static void csa(std::uint64_t& h, std::uint64_t& l, std::uint64_t a, std::uint64_t b,
                  std::uint64_t c) {
    const std::uint64_t u = a ^ b;
    h = (a & b) | (u & c);
    l = u ^ c;
  }

  // Reduces the 16 buffered values of bucket b into its planes.
  NMHASH_NOINLINE void flush(std::size_t b) {
    std::uint32_t* c = counts_.data() + b * 64 * words_;
    const std::size_t s = words_;
    for (std::size_t w = 0; w < words_; ++w) {
      const std::uint64_t* d = buffer_.data() + b * group * words_ + w;
      std::uint64_t* p = planes_.data() + b * planes * words_ + w;
      std::uint64_t ones = p[0], twos = p[s], fours = p[2 * s], eights = p[3 * s];
      std::uint64_t twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
      csa(twos_a, ones, ones, d[0 * s], d[1 * s]);
      csa(twos_b, ones, ones, d[2 * s], d[3 * s]);
      csa(fours_a, twos, twos, twos_a, twos_b);
      csa(twos_a, ones, ones, d[4 * s], d[5 * s]);
      csa(twos_b, ones, ones, d[6 * s], d[7 * s]);
      csa(fours_b, twos, twos, twos_a, twos_b);
      csa(eights_a, fours, fours, fours_a, fours_b);
      csa(twos_a, ones, ones, d[8 * s], d[9 * s]);
      csa(twos_b, ones, ones, d[10 * s], d[11 * s]);
      csa(fours_a, twos, twos, twos_a, twos_b);
      csa(twos_a, ones, ones, d[12 * s], d[13 * s]);
      csa(twos_b, ones, ones, d[14 * s], d[15 * s]);
      csa(fours_b, twos, twos, twos_a, twos_b);
      csa(eights_b, fours, fours, fours_a, fours_b);
      csa(sixteens, eights, eights, eights_a, eights_b);
      p[0] = ones;
      p[s] = twos;
      p[2 * s] = fours;
      p[3 * s] = eights;
      std::uint64_t carry = sixteens;
      for (unsigned level = 4; level < planes; ++level) {
        const std::uint64_t t = p[level * s] & carry;
        p[level * s] ^= carry;
        carry = t;
      }
      if (carry) add_bits(c + 64 * w, carry, 256u);
    }
  }

  std::size_t buckets_;
  std::size_t words_;
  std::vector<std::uint32_t> added_;
  std::vector<std::uint64_t> buffer_;
  std::vector<std::uint64_t> planes_;
  std::vector<std::uint32_t> counts_;
};

#if defined(__GNUC__) || defined(__clang__)
#define NMHASH_HAS_VECTOR_BIT_COUNTER 1

// The same interface for 256-bit integer vectors: every bit of a value is
// broadcast into a byte lane and added to its bucket's byte counters (two
// 32-byte vectors per word), which spill into the integer counters every
// 128 values. Written with the GCC/Clang vector extension; it is used at
// the avx2 level (cell_bit_counter), where the scan that adds the values is
// compiled for AVX2 (core/cpu.hpp), whatever the translation unit's flags.
template <int W>
class vector_bit_counter {
  typedef std::uint64_t u64x4 __attribute__((vector_size(32)));
  typedef std::uint8_t u8x32 __attribute__((vector_size(32)));
  struct alignas(32) row_word {
    u8x32 lo, hi;
  };

 public:
  vector_bit_counter(std::size_t buckets, std::size_t words)
      : buckets_(buckets),
        words_(W > 0 ? static_cast<std::size_t>(W) : words),
        added_(buckets, 0),
        rows_(buckets * words_),
        counts_(buckets * 64 * words_, 0) {}

  void reset() {
    std::fill(added_.begin(), added_.end(), 0u);
    std::fill(rows_.begin(), rows_.end(), row_word{});
    std::fill(counts_.begin(), counts_.end(), 0u);
  }

  void add(std::size_t b, const std::uint64_t* x) {
    // Lane i of `lo` holds byte i % 8 of the value and tests bit i / 8 of
    // it (bit 8 (i % 8) + i / 8 of the word); `hi` tests bits 4..7.
    const u8x32 lo_mask = {1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                           4, 4, 4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8};
    const u8x32 hi_mask = lo_mask << 4;
    const std::size_t nw = W > 0 ? static_cast<std::size_t>(W) : words_;
    row_word* row = rows_.data() + b * nw;
    for (std::size_t w = 0; w < nw; ++w) {
      const u64x4 v = {x[w], x[w], x[w], x[w]};
      const u8x32 bytes = reinterpret_cast<const u8x32&>(v);
      row[w].lo -= reinterpret_cast<u8x32>((bytes & lo_mask) == lo_mask);
      row[w].hi -= reinterpret_cast<u8x32>((bytes & hi_mask) == hi_mask);
    }
    if (NMHASH_UNLIKELY((++added_[b] & 127u) == 0)) spill(b);
  }

  std::uint32_t added(std::size_t b) const { return added_[b]; }

  void finish() {
    for (std::size_t b = 0; b < buckets_; ++b)
      if (added_[b] & 127u) spill(b);
  }

  std::uint32_t count(std::size_t b, std::size_t bit) const {
    return counts_[b * 64 * words_ + bit];
  }

 private:
  NMHASH_NOINLINE void spill(std::size_t b) {
    row_word* row = rows_.data() + b * words_;
    std::uint32_t* c = counts_.data() + b * 64 * words_;
    for (std::size_t w = 0; w < words_; ++w) {
      for (unsigned i = 0; i < 32; ++i) {
        const unsigned bit = 8 * (i % 8) + i / 8;
        c[64 * w + bit] += row[w].lo[i];
        c[64 * w + bit + 4] += row[w].hi[i];
      }
      row[w] = row_word{};
    }
  }

  std::size_t buckets_;
  std::size_t words_;
  std::vector<std::uint32_t> added_;
  std::vector<row_word> rows_;
  std::vector<std::uint32_t> counts_;
};

#else
#define NMHASH_HAS_VECTOR_BIT_COUNTER 0
#endif

// The counter leave-one-bit-out MAP uses at instruction-set level L.
template <int W, isa L>
using cell_bit_counter =
#if NMHASH_HAS_VECTOR_BIT_COUNTER
    std::conditional_t<(L >= isa::avx2), vector_bit_counter<W>, bucketed_positional_popcount<W>>;
#else
    bucketed_positional_popcount<W>;
#endif

}  // namespace nmhash::detail
