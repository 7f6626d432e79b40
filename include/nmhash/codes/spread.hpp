// How spread out a set of binary codes is: the number of distinct codes and
// the share of the most frequent one. A hashing network whose codes have
// collapsed (a handful of codes for a whole database) ranks no better than
// chance; trainers report this after every evaluation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"

namespace nmhash {

struct code_spread_result {
  std::size_t distinct = 0;    // number of distinct codes
  double largest_share = 0.0;  // share of the codes equal to the most frequent one (0 for no codes)

  // Fewer than `min_distinct` distinct codes, or more than `max_share` of
  // them equal: the thresholds the trainers warn at.
  bool collapsed(std::size_t min_distinct = 10, double max_share = 0.5) const {
    return distinct < min_distinct || largest_share > max_share;
  }
};

inline code_spread_result code_spread(const packed_codes& c) {
  const std::size_t n = c.size(), w = c.words_per_code();
  code_spread_result r;
  if (n == 0) return r;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto less = [&](std::size_t a, std::size_t b) {
    return std::lexicographical_compare(c.row(a), c.row(a) + w, c.row(b), c.row(b) + w);
  };
  std::sort(order.begin(), order.end(), less);
  std::size_t run = 1, top = 1;
  r.distinct = 1;
  for (std::size_t i = 1; i < n; ++i) {
    if (std::equal(c.row(order[i]), c.row(order[i]) + w, c.row(order[i - 1]))) {
      top = std::max(top, ++run);
    } else {
      ++r.distinct;
      run = 1;
    }
  }
  r.largest_share = static_cast<double>(top) / static_cast<double>(n);
  return r;
}

}  // namespace nmhash
