// The NMLayer's active phase (paper Eq. 1-4) on a learnable symmetric
// adjacency A over the K current nodes:
//   p_k   = MAP without bit k, validation set V as queries, batch as gallery  (1)
//   p'_i  = p_i + 1/2 sum_{j != i} a_ij (p_j - p_i)                            (2)
//   L     = sum_{i != j} |p'_i - p'_j|                                          (3)
// A is one parameter per pair i < j (a_ij = a_ji). Two gradients:
// - paper_eq4: dL/da_ij = sgn(p'_i - p'_j) (p_j - p_i), the paper's Eq. (4);
// - chain_rule: the exact gradient of (3) through (2) for the symmetric A,
//   dL/da_ij = 1/2 (p_j - p_i) (g_i - g_j), g_k = dL/dp'_k
//   = 2 sum_{l != k} sgn(p'_k - p'_l) (ordered pairs count twice in (3)).
// For K = 2 the two differ by the factor 2; for larger K Eq. (4) keeps only
// the pair's own term and ignores how a_ij moves p'_i and p'_j against the
// other nodes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"

namespace nmhash::hashing {

enum class active_gradient { paper_eq4, chain_rule };

inline const char* to_string(active_gradient g) { return g == active_gradient::paper_eq4 ? "paper_eq4" : "chain_rule"; }

inline active_gradient parse_active_gradient(const std::string& s) {
  if (s == "paper_eq4") return active_gradient::paper_eq4;
  require(s == "chain_rule", "active gradient '", s, "' is not one of paper_eq4, chain_rule");
  return active_gradient::chain_rule;
}

namespace detail {
inline double sgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
inline void check_square(const std::vector<double>& a, const std::vector<double>& p, const char* who) {
  require(a.size() == p.size() * p.size(), who, ": adjacency has ", a.size(), " entries, expected K x K = ",
          p.size() * p.size(), " for K = ", p.size(), " scores");
}
}  // namespace detail

// Eq. (2): p' from the scores p and the adjacency (K x K, row-major, the
// upper triangle i < j is read).
inline std::vector<double> adjusted_scores(const std::vector<double>& a, const std::vector<double>& p) {
  detail::check_square(a, p, "adjusted_scores");
  const std::size_t k = p.size();
  std::vector<double> q(p);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = i + 1; j < k; ++j) {
      const double w = 0.5 * a[i * k + j];
      q[i] += w * (p[j] - p[i]);
      q[j] += w * (p[i] - p[j]);
    }
  return q;
}

// Eq. (3) over ordered pairs.
inline double active_loss(const std::vector<double>& q) {
  double l = 0;
  for (std::size_t i = 0; i < q.size(); ++i)
    for (std::size_t j = i + 1; j < q.size(); ++j) l += 2.0 * std::abs(q[i] - q[j]);
  return l;
}

// dL/da_ij for i < j, written into the upper triangle of a K x K matrix
// (the rest is zero).
inline std::vector<double> active_gradient_of(const std::vector<double>& a, const std::vector<double>& p,
                                              active_gradient rule) {
  const auto q = adjusted_scores(a, p);
  const std::size_t k = p.size();
  std::vector<double> g(k * k, 0.0), dq(k, 0.0);
  if (rule == active_gradient::chain_rule)
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t l = 0; l < k; ++l)
        if (l != i) dq[i] += 2.0 * detail::sgn(q[i] - q[l]);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = i + 1; j < k; ++j)
      g[i * k + j] = rule == active_gradient::paper_eq4 ? detail::sgn(q[i] - q[j]) * (p[j] - p[i])
                                                        : 0.5 * (p[j] - p[i]) * (dq[i] - dq[j]);
  return g;
}

// One descent step on A: a_ij -= lr dL/da_ij for i < j, then clipped to
// [0, 1] and mirrored (a_ji = a_ij, zero diagonal). Returns L at the old A.
inline double active_step(std::vector<double>& a, const std::vector<double>& p, double lr,
                          active_gradient rule) {
  detail::check_square(a, p, "active_step");
  const double loss = active_loss(adjusted_scores(a, p));
  const auto g = active_gradient_of(a, p, rule);
  const std::size_t k = p.size();
  for (std::size_t i = 0; i < k; ++i) {
    a[i * k + i] = 0.0;
    for (std::size_t j = i + 1; j < k; ++j) {
      const double v = std::clamp(a[i * k + j] - lr * g[i * k + j], 0.0, 1.0);
      a[i * k + j] = a[j * k + i] = v;
    }
  }
  return loss;
}

}  // namespace nmhash::hashing
