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
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/config.hpp"

namespace nmhash::detail {

template <int W>
class bucketed_positional_popcount {
 public:
  static constexpr unsigned group = 16;
  // Bit-sliced planes per word: ones, twos, fours, eights (carry-save
  // adders), then 16s, 32s, 64s and 128s (ripple-carry of each group's
  // sixteens carry). Counts of 256 and more go to the integer counters.
  static constexpr unsigned planes = 8;
  // Consecutive values go to different lanes (each with its own fill
  // counters and buffers), so that two nearby values of one bucket do not
  // update the same counter back to back.
  static constexpr unsigned lanes = 4;

  bucketed_positional_popcount(std::size_t buckets, std::size_t words)
      : buckets_(buckets),
        words_(W > 0 ? static_cast<std::size_t>(W) : words),
        added_(lanes * buckets, 0),
        buffer_(lanes * buckets * group * words_, 0),
        planes_(buckets * planes * words_, 0),
        counts_(buckets * 64 * words_, 0) {}

  std::size_t words() const { return words_; }

  void reset() {
    std::fill(added_.begin(), added_.end(), 0u);
    std::fill(planes_.begin(), planes_.end(), 0u);
    std::fill(counts_.begin(), counts_.end(), 0u);
  }

  // Adds the words()-word value x to bucket b.
  void add(std::size_t b, const std::uint64_t* x) {
    std::uint64_t* slot = buffer_.data() + (b * group + (added_[b] % group)) * words_;
    for (std::size_t w = 0; w < words_; ++w) slot[w] = x[w];
    if (++added_[b] % group == 0) flush(0, b);
  }

  // add() for n one-word values: x[i] goes to bucket b[i].
  void add1(const std::uint32_t* NMHASH_RESTRICT b, const std::uint64_t* NMHASH_RESTRICT x,
            std::size_t n) {
    std::uint32_t* NMHASH_RESTRICT added = added_.data();
    std::uint64_t* NMHASH_RESTRICT buffer = buffer_.data();
    const std::size_t lane_stride = buckets_;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t lb = (i % lanes) * lane_stride + b[i];
      const std::uint32_t a = added[lb];
      buffer[lb * group + (a % group)] = x[i];
      added[lb] = a + 1;
      if (NMHASH_UNLIKELY((a + 1) % group == 0)) flush(i % lanes, b[i]);
    }
  }

  // Number of values added to bucket b (valid after finish()).
  std::uint32_t added(std::size_t b) const { return added_[b]; }

  // Folds the partial groups and the planes into the integer counters;
  // afterwards count(b, bit) and added(b) are exact. Untouched buckets cost
  // nothing.
  void finish() {
    for (std::size_t b = 0; b < buckets_; ++b) {
      std::uint32_t total = 0;
      for (unsigned lane = 0; lane < lanes; ++lane) {
        const std::uint32_t a = added_[lane * buckets_ + b];
        total += a;
        const unsigned fill = a % group;
        if (fill != 0) {
          std::uint64_t* buf = buffer_.data() + (lane * buckets_ + b) * group * words_;
          std::fill(buf + fill * words_, buf + group * words_, std::uint64_t{0});
          flush(lane, b);
        }
        if (lane > 0) added_[lane * buckets_ + b] = 0;
      }
      added_[b] = total;
      if (total == 0) continue;
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

  // Reduces the 16 buffered values of (lane, bucket b) into b's planes.
  NMHASH_NOINLINE void flush(std::size_t lane, std::size_t b) {
    std::uint32_t* c = counts_.data() + b * 64 * words_;
    const std::size_t s = words_;
    for (std::size_t w = 0; w < words_; ++w) {
      const std::uint64_t* d = buffer_.data() + (lane * buckets_ + b) * group * words_ + w;
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

}  // namespace nmhash::detail
