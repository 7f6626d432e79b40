// Ranking quality of one query computed from its distance-relevance
// histogram: counts[2 h + r] items at Hamming distance h that are relevant
// (r = 1) or not (r = 0), h = 0..max_distance.
//
// Tie-aware values are expectations over a uniformly random order of the
// items inside each tie group (McSherry & Najork, ECIR 2008), in closed form
// and O(K) per query. Index-order values (ties broken by ascending database
// index, as a stable sort gives) need the item order and live in
// metrics.hpp.
//
// Conventions (shared by both tie rules):
//  - AP = (1/R) sum over relevant items of precision at their rank; a query
//    with R = 0 relevant items scores 0 and still counts in the mean.
//  - AP@k = sum over relevant items ranked <= k of precision at their rank,
//    divided by the number of relevant items ranked <= k (the DPSH /
//    DeepHash-pytorch normalisation); 0 when none is ranked <= k.
//  - precision@N = relevant items among the first min(N, database size),
//    divided by that number.
//  - precision within radius r = relevant / retrieved among items at
//    distance <= r (0 when nothing is retrieved); recall = relevant within
//    r / R (0 when R = 0).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/core/config.hpp"

namespace nmhash {

namespace detail {

// H_b - H_a for large a from the asymptotic series of H_n = ln n + gamma +
// 1/(2n) - 1/(12 n^2) + 1/(120 n^4) - ..., formed term by term to avoid
// cancellation; for a >= 64 the first omitted term is below 1e-16 relative.
NMHASH_HOST_DEVICE inline double harmonic_diff_asymptotic(double a, double b) {
  const double ia2 = 1.0 / (a * a), ib2 = 1.0 / (b * b);
  return log1p((b - a) / a) + 0.5 / b - 0.5 / a - (ib2 - ia2) / 12.0 +
         (ib2 * ib2 - ia2 * ia2) / 120.0;
}

}  // namespace detail

// H_b - H_a = sum_{i=a+1..b} 1/i for a <= b, exact by table for small
// arguments and by the asymptotic series of the digamma function beyond.
class harmonic_numbers {
 public:
  explicit harmonic_numbers(std::size_t table_size = 1 << 16) : h_(table_size + 1, 0.0) {
    for (std::size_t i = 1; i <= table_size; ++i) h_[i] = h_[i - 1] + 1.0 / static_cast<double>(i);
  }

  double diff(std::uint64_t a, std::uint64_t b) const {
    if (a == b) return 0.0;
    if (b < h_.size()) return h_[b] - h_[a];
    if (a < h_.size()) return (h_.back() - h_[a]) + asymptotic(h_.size() - 1, b);
    return asymptotic(a, b);
  }

 private:
  static double asymptotic(std::uint64_t a, std::uint64_t b) {
    return detail::harmonic_diff_asymptotic(static_cast<double>(a), static_cast<double>(b));
  }

  std::vector<double> h_;
};

namespace detail {

// Expected sum of precision-at-rank over the relevant items of a tie group
// of n items, r relevant, placed after c items of which rel_before are
// relevant, in uniformly random order (design.md, tie-aware AP):
// (r/n) [ (rel_before + 1 - m (c + 1)) (H_{c+n} - H_c) + m n ],
// m = (r - 1)/(n - 1).
NMHASH_HD_TEMPLATE
template <class Harmonic>
NMHASH_HOST_DEVICE double tie_group_precision_sum(double n, double r, double c, double rel_before,
                                                  const Harmonic& H) {
  if (r <= 0) return 0.0;
  const double m = n > 1 ? (r - 1) / (n - 1) : 0.0;
  const double hd = H.diff(static_cast<std::uint64_t>(c), static_cast<std::uint64_t>(c + n));
  return (r / n) * ((rel_before + 1 - m * (c + 1)) * hd + m * n);
}

// log of the hypergeometric probability of drawing j relevant items when t
// of n items (r relevant) are drawn.
NMHASH_HOST_DEVICE inline double log_choose(double a, double b) {
  return lgamma(a + 1) - lgamma(b + 1) - lgamma(a - b + 1);
}
NMHASH_HOST_DEVICE inline double log_hypergeometric(double n, double r, double t, double j) {
  return log_choose(r, j) + log_choose(n - r, t - j) - log_choose(n, t);
}

}  // namespace detail

// Harmonic differences without a table, usable in device code: summed
// exactly below 64, by the asymptotic series above.
struct harmonic_series {
  NMHASH_HOST_DEVICE double diff(std::uint64_t a, std::uint64_t b) const {
    double s = 0;
    std::uint64_t i = a + 1;
    for (; i <= b && i <= 64; ++i) s += 1.0 / static_cast<double>(i);
    if (i <= b) s += detail::harmonic_diff_asymptotic(static_cast<double>(i - 1), static_cast<double>(b));
    return s;
  }
};

// Tie-aware AP of one query over the full ranking from a histogram
// accessor: count(h, r) items at distance h with relevance r. Harmonic:
// harmonic_numbers on the host, harmonic_series anywhere.
NMHASH_HD_TEMPLATE
template <class Count, class Harmonic>
NMHASH_HOST_DEVICE double tie_aware_ap_of(const Count& count, int max_distance,
                                          const Harmonic& H) {
  double sum = 0, c = 0, rel = 0;
  for (int h = 0; h <= max_distance; ++h) {
    const double r = count(h, 1);
    const double n = r + count(h, 0);
    if (n == 0) continue;
    sum += detail::tie_group_precision_sum(n, r, c, rel, H);
    c += n;
    rel += r;
  }
  return rel > 0 ? sum / rel : 0.0;
}

namespace detail {
// count(h, r) over a histogram array counts[2 h + r].
struct histogram_cells {
  const std::uint32_t* counts;
  NMHASH_HOST_DEVICE double operator()(int h, int r) const { return counts[2 * h + r]; }
};
}  // namespace detail

// Tie-aware AP of one query over the full ranking from counts[2 h + r].
NMHASH_HD_TEMPLATE
template <class Harmonic>
NMHASH_HOST_DEVICE double tie_aware_ap(const std::uint32_t* counts, int max_distance,
                                       const Harmonic& H) {
  return tie_aware_ap_of(detail::histogram_cells{counts}, max_distance, H);
}

// Tie-aware AP@k: the expectation of AP@k (normalised by the relevant items
// within the top k) over random tie orders. The tie group that straddles
// rank k contributes t = k - c of its n items; the number j of relevant ones
// among them is hypergeometric, and the expectation is taken exactly over j.
NMHASH_HD_TEMPLATE
template <class Harmonic>
NMHASH_HOST_DEVICE double tie_aware_ap_at(const std::uint32_t* counts, int max_distance,
                                          std::size_t k, const Harmonic& H) {
  double full = 0, c = 0, rel = 0;
  const double kk = static_cast<double>(k);
  for (int h = 0; h <= max_distance; ++h) {
    const double r = counts[2 * h + 1];
    const double n = r + counts[2 * h];
    if (n == 0) continue;
    if (c + n <= kk) {
      full += detail::tie_group_precision_sum(n, r, c, rel, H);
      c += n;
      rel += r;
      continue;
    }
    // Boundary group: t of its n items fall within the top k.
    const double t = kk - c;
    const double jmin = t - (n - r) > 0 ? t - (n - r) : 0.0;
    const double jmax = t < r ? t : r;
    double expect = 0;
    for (double j = jmin; j <= jmax; ++j) {
      if (rel + j == 0) continue;
      const double p = exp(detail::log_hypergeometric(n, r, t, j));
      expect += p * (full + detail::tie_group_precision_sum(t, j, c, rel, H)) / (rel + j);
    }
    return expect;
  }
  return rel > 0 ? full / rel : 0.0;
}

// Expected number of relevant items among the first `top` ranks.
inline double tie_aware_relevant_in_top(const std::uint32_t* counts, int max_distance,
                                        std::size_t top) {
  double c = 0, rel = 0;
  const double tt = static_cast<double>(top);
  for (int h = 0; h <= max_distance; ++h) {
    const double r = counts[2 * h + 1];
    const double n = r + counts[2 * h];
    if (n == 0) continue;
    if (c + n <= tt) {
      c += n;
      rel += r;
    } else {
      return rel + (tt - c) * r / n;
    }
  }
  return rel;
}

struct precision_recall {
  double precision = 0;
  double recall = 0;
};

// Precision and recall within every radius r = 0..max_distance at once
// (precision[r], recall[r]); the tie rule does not matter, as the whole
// Hamming ball is retrieved.
inline void radius_curve(const std::uint32_t* counts, int max_distance, double* precision,
                         double* recall) {
  double rel_all = 0;
  for (int h = 0; h <= max_distance; ++h) rel_all += counts[2 * h + 1];
  double retrieved = 0, rel_in = 0;
  for (int h = 0; h <= max_distance; ++h) {
    retrieved += counts[2 * h] + counts[2 * h + 1];
    rel_in += counts[2 * h + 1];
    precision[h] = retrieved > 0 ? rel_in / retrieved : 0.0;
    recall[h] = rel_all > 0 ? rel_in / rel_all : 0.0;
  }
}

}  // namespace nmhash
