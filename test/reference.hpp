// Plain reference implementations the tests compare the library against:
// unpacked +-1 codes, brute-force distances, sort-based rankings and
// average precision, and exhaustive enumeration of tie orders.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "nmhash/nmhash.hpp"

namespace ref {

using bits_t = std::vector<std::vector<int>>;  // N x K of 0/1

inline bits_t random_bits(std::size_t n, std::size_t k, std::mt19937_64& g, double p_one = 0.5) {
  std::bernoulli_distribution b(p_one);
  bits_t x(n, std::vector<int>(k));
  for (auto& r : x)
    for (auto& v : r) v = b(g) ? 1 : 0;
  return x;
}

inline nmhash::packed_codes pack(const bits_t& x, std::size_t k) {
  nmhash::packed_codes c(x.size(), k);
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t j = 0; j < k; ++j) c.set_bit(i, j, x[i][j] != 0);
  return c;
}

inline int distance(const std::vector<int>& a, const std::vector<int>& b) {
  int d = 0;
  for (std::size_t j = 0; j < a.size(); ++j) d += a[j] != b[j];
  return d;
}

// Relevance as a dense matrix rel[q][j].
using relevance_t = std::vector<std::vector<int>>;

inline relevance_t single_relevance(const std::vector<std::int32_t>& ql,
                                    const std::vector<std::int32_t>& dl) {
  relevance_t r(ql.size(), std::vector<int>(dl.size()));
  for (std::size_t q = 0; q < ql.size(); ++q)
    for (std::size_t j = 0; j < dl.size(); ++j) r[q][j] = ql[q] == dl[j];
  return r;
}

// Index-order ranking of one query: stable sort of indices by distance.
inline std::vector<std::size_t> stable_ranking(const std::vector<int>& dist) {
  std::vector<std::size_t> order(dist.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return dist[a] < dist[b]; });
  return order;
}

// AP of a ranked relevance list, and AP@k with the DPSH normalisation.
inline double ap_of_list(const std::vector<int>& rel_in_rank_order, std::size_t k) {
  double sum = 0;
  std::size_t hits = 0;
  const std::size_t n = std::min(k, rel_in_rank_order.size());
  for (std::size_t i = 0; i < n; ++i)
    if (rel_in_rank_order[i]) {
      ++hits;
      sum += static_cast<double>(hits) / static_cast<double>(i + 1);
    }
  return hits ? sum / static_cast<double>(hits) : 0.0;
}

inline double ap_full_of_list(const std::vector<int>& rel_in_rank_order) {
  double sum = 0;
  std::size_t hits = 0, total = 0;
  for (int r : rel_in_rank_order) total += r != 0;
  for (std::size_t i = 0; i < rel_in_rank_order.size(); ++i)
    if (rel_in_rank_order[i]) {
      ++hits;
      sum += static_cast<double>(hits) / static_cast<double>(i + 1);
    }
  return total ? sum / static_cast<double>(total) : 0.0;
}

inline std::vector<int> ranked_relevance(const std::vector<int>& dist, const std::vector<int>& rel) {
  std::vector<int> out;
  for (std::size_t j : stable_ranking(dist)) out.push_back(rel[j]);
  return out;
}

// Mean over every distinct order of items inside tie groups of f(ranked
// relevance): the tie-aware expectation by brute force. Only relevance
// within a group matters, so groups are enumerated as multiset
// permutations, each equally likely.
template <class F>
double mean_over_tie_orders(const std::vector<int>& dist, const std::vector<int>& rel, F f) {
  const int maxd = dist.empty() ? 0 : *std::max_element(dist.begin(), dist.end());
  std::vector<std::vector<int>> groups(static_cast<std::size_t>(maxd) + 1);
  for (std::size_t j = 0; j < dist.size(); ++j) groups[static_cast<std::size_t>(dist[j])].push_back(rel[j]);
  for (auto& g : groups) std::sort(g.begin(), g.end());
  double sum = 0;
  double count = 0;
  // Recursive product over groups of their distinct permutations. Within a
  // group of n items with r relevant, each distinct 0/1 arrangement has the
  // same multiplicity r!(n-r)!, so a plain mean over distinct arrangements
  // is the mean over all n! orders.
  std::vector<int> list;
  std::function<void(std::size_t)> rec = [&](std::size_t g) {
    if (g == groups.size()) {
      sum += f(list);
      count += 1;
      return;
    }
    std::vector<int> perm = groups[g];
    do {
      const std::size_t before = list.size();
      list.insert(list.end(), perm.begin(), perm.end());
      rec(g + 1);
      list.resize(before);
    } while (std::next_permutation(perm.begin(), perm.end()));
  };
  rec(0);
  return sum / count;
}

}  // namespace ref
