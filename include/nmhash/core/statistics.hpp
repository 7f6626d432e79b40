// Statistics over repeated runs (seeds): mean and sample standard
// deviation, and the rule by which a paired difference is reported as
// beyond its spread.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace nmhash {

// Mean and sample standard deviation (n - 1; 0 for one value) of n values.
struct spread {
  double mean = 0, sd = 0;
  std::size_t n = 0;
};

inline spread spread_of(const std::vector<double>& v) {
  spread s;
  s.n = v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  return s;
}

// Whether a paired difference (s: of the per-seed differences) is beyond
// its spread: |mean| above twice their standard deviation, over at least
// two seeds.
inline bool beyond_2sd(const spread& s) { return s.n >= 2 && std::abs(s.mean) > 2 * s.sd; }

}  // namespace nmhash
