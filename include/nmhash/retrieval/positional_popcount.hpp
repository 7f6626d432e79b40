// Per-bucket positional population count: for every bucket b and bit k, how
// many of the words added to b have bit k set. Leave-one-bit-out MAP uses it
// with one bucket per (distance, relevance) pair to learn, for every bit, how
// many items of each histogram cell differ from the query in that bit.
//
// Words are buffered per bucket in groups of 16 and reduced with a
// Harley-Seal carry-save adder tree into bit-sliced counters (ones, twos,
// fours, eights); only the sixteens carry is expanded into integer counters,
// so the per-word cost is a few logic operations instead of one increment
// per set bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/core/bits.hpp"

namespace nmhash::detail {

template <int W>
class bucketed_positional_popcount {
 public:
  static constexpr int group = 16;

  bucketed_positional_popcount(std::size_t buckets, std::size_t words)
      : buckets_(buckets),
        words_(W > 0 ? static_cast<std::size_t>(W) : words),
        fill_(buckets, 0),
        buffer_(buckets * group * words_, 0),
        planes_(buckets * 4 * words_, 0),
        counts_(buckets * 64 * words_, 0) {}

  std::size_t words() const { return words_; }

  void reset() {
    std::fill(fill_.begin(), fill_.end(), 0u);
    std::fill(planes_.begin(), planes_.end(), 0u);
    std::fill(counts_.begin(), counts_.end(), 0u);
  }

  // Adds the `words()`-word value x to bucket b.
  void add(std::size_t b, const std::uint64_t* x) {
    std::uint64_t* slot = buffer_.data() + (b * group + fill_[b]) * words_;
    for (std::size_t w = 0; w < words_; ++w) slot[w] = x[w];
    if (++fill_[b] == group) flush(b);
  }

  // Specialisation for one word.
  void add1(std::size_t b, std::uint64_t x) {
    buffer_[b * group + fill_[b]] = x;
    if (++fill_[b] == group) flush(b);
  }

  // Folds buffered words and bit-sliced planes into the integer counters;
  // afterwards count(b, bit) is exact.
  void finish() {
    for (std::size_t b = 0; b < buckets_; ++b) {
      std::uint32_t* c = counts_.data() + b * 64 * words_;
      for (std::size_t w = 0; w < words_; ++w) {
        std::uint64_t* p = planes_.data() + (b * 4) * words_;
        for (unsigned level = 0; level < 4; ++level) {
          add_bits(c + 64 * w, p[level * words_ + w], 1u << level);
          p[level * words_ + w] = 0;
        }
        for (unsigned s = 0; s < fill_[b]; ++s)
          add_bits(c + 64 * w, buffer_[(b * group + s) * words_ + w], 1u);
      }
      fill_[b] = 0;
    }
  }

  // Number of words added to bucket b with bit `bit` set (after finish()).
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

  void flush(std::size_t b) {
    fill_[b] = 0;
    std::uint32_t* c = counts_.data() + b * 64 * words_;
    for (std::size_t w = 0; w < words_; ++w) {
      const std::uint64_t* d = buffer_.data() + b * group * words_ + w;
      const std::size_t s = words_;
      std::uint64_t* p = planes_.data() + (b * 4) * words_;
      std::uint64_t ones = p[w], twos = p[words_ + w], fours = p[2 * words_ + w],
                    eights = p[3 * words_ + w];
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
      p[w] = ones;
      p[words_ + w] = twos;
      p[2 * words_ + w] = fours;
      p[3 * words_ + w] = eights;
      add_bits(c + 64 * w, sixteens, 16u);
    }
  }

  std::size_t buckets_;
  std::size_t words_;
  std::vector<std::uint32_t> fill_;
  std::vector<std::uint64_t> buffer_;
  std::vector<std::uint64_t> planes_;
  std::vector<std::uint32_t> counts_;
};

}  // namespace nmhash::detail
