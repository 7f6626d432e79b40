// Leave-one-bit-out MAP: for every bit k, the MAP the codes would reach with
// bit k deleted from every query and database code (paper Fig. 1, and the
// importance score of the NMLayer's active phase).
//
// Tie-aware, all K values come from one pass over the database: deleting bit
// k moves an item at distance h to h - 1 exactly when it differs from the
// query in bit k. With c[h][r][k] the number of items at distance h and
// relevance r that differ in bit k, the histogram without bit k is
// n[h][r] - c[h][r][k] + c[h+1][r][k], and the closed-form tie-aware AP of
// each of the K histograms costs O(K). The c counts are positional
// popcounts of the XOR words grouped by (distance, relevance) cell.
//
// Index-order values need each item's position within its tie group, which
// deleting a bit changes, so they take one histogram pass and one walk per
// bit: K times the work of one index-order MAP.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/retrieval/average_precision.hpp"
#include "nmhash/retrieval/hamming.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/retrieval/positional_popcount.hpp"

namespace nmhash {

struct loo_map_result {
  tie_rule ties = tie_rule::aware;
  // MAP with all K bits.
  double full = 0;
  // without_bit[k]: MAP with bit k deleted (K entries).
  std::vector<double> without_bit;
};

namespace detail {

// Tie-aware AP with all bits and with each bit deleted, for one query.
template <int W, class Rel>
void loo_query_tie_aware(const std::uint64_t* q, const packed_codes& db, const Rel& rel,
                         bucketed_positional_popcount<W>& pos, std::vector<std::uint32_t>& counts,
                         std::vector<std::uint32_t>& reduced, const harmonic_numbers& H,
                         double& full, double* without) {
  const std::size_t n = db.size(), words = db.words_per_code();
  const int K = static_cast<int>(db.bits());
  std::fill(counts.begin(), counts.end(), 0u);
  pos.reset();
  const std::uint64_t* base = db.data();
  if constexpr (W == 1) {
    const std::uint64_t q0 = q[0];
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint64_t x = q0 ^ base[j];
      const std::size_t b = static_cast<std::size_t>(popcount64(x)) << 1 | rel(j);
      ++counts[b];
      pos.add1(b, x);
    }
  } else {
    std::uint64_t x[W > 0 ? W : 1];
    std::vector<std::uint64_t> xv(W > 0 ? 0 : words);
    std::uint64_t* xp = W > 0 ? x : xv.data();
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint64_t* d = base + j * words;
      int h = 0;
      for (std::size_t w = 0; w < words; ++w) {
        xp[w] = q[w] ^ d[w];
        h += popcount64(xp[w]);
      }
      const std::size_t b = static_cast<std::size_t>(h) << 1 | rel(j);
      ++counts[b];
      pos.add(b, xp);
    }
  }
  pos.finish();
  full = tie_aware_ap(counts.data(), K, H);
  for (int k = 0; k < K; ++k) {
    const std::size_t bk = static_cast<std::size_t>(k);
    for (int h = 0; h < K; ++h) {
      for (std::size_t r = 0; r < 2; ++r) {
        const std::size_t cell = 2 * static_cast<std::size_t>(h) + r;
        reduced[cell] = counts[cell] - pos.count(cell, bk) + pos.count(cell + 2, bk);
      }
    }
    without[k] = tie_aware_ap(reduced.data(), K - 1, H);
  }
}

// Index-order AP with each bit deleted, for one query: per bit one
// histogram pass over the distances without that bit and one walk.
template <int W, class Rel>
void loo_query_index_order(const std::uint64_t* q, const packed_codes& db, const Rel& rel,
                           std::vector<std::uint32_t>& counts, std::vector<std::uint16_t>& tags,
                           std::vector<std::uint64_t>& scratch, index_order_walk& walk,
                           double& full, double* without) {
  const std::size_t n = db.size(), words = db.words_per_code();
  const int K = static_cast<int>(db.bits());
  static const std::vector<std::size_t> none;
  std::fill(counts.begin(), counts.end(), 0u);
  distance_relevance_histogram<W>(q, db.data(), n, words, rel, counts.data(), tags.data());
  walk.run(tags.data(), n, counts.data(), K, none, none, scratch);
  full = walk.ap;
  for (int k = 0; k < K; ++k) {
    const std::size_t wk = static_cast<std::size_t>(k) / 64;
    const unsigned sh = static_cast<unsigned>(k) % 64;
    const std::uint64_t qb = (q[wk] >> sh) & 1u;
    std::fill(counts.begin(), counts.end(), 0u);
    for (std::size_t j = 0; j < n; ++j) {
      const unsigned differs = static_cast<unsigned>(((db.data()[j * words + wk] >> sh) & 1u) ^ qb);
      const unsigned t = tags[j] - (differs << 1);
      ++counts[t];
      tags[j] = static_cast<std::uint16_t>(t);
    }
    walk.run(tags.data(), n, counts.data(), K - 1, none, none, scratch);
    without[k] = walk.ap;
    for (std::size_t j = 0; j < n; ++j) {
      const unsigned differs = static_cast<unsigned>(((db.data()[j * words + wk] >> sh) & 1u) ^ qb);
      tags[j] = static_cast<std::uint16_t>(tags[j] + (differs << 1));
    }
  }
}

}  // namespace detail

// Leave-one-bit-out MAP of the queries against the database. Needs K >= 2.
inline loo_map_result leave_one_bit_out_map(const packed_codes& queries,
                                            const packed_codes& database,
                                            const labels& query_labels,
                                            const labels& database_labels,
                                            tie_rule ties = tie_rule::aware, threads t = {}) {
  detail::check_inputs(queries, database, query_labels, database_labels,
                       "leave_one_bit_out_map");
  require(database.bits() >= 2, "leave_one_bit_out_map: needs at least 2 bits, got K = ",
          database.bits());
  const std::size_t nq = queries.size(), n = database.size();
  const std::size_t K = database.bits();
  const std::size_t cells = 2 * (K + 1);
  std::vector<double> full(nq), without(nq * K);
  const harmonic_numbers H(detail::harmonic_table_size(n));
  dispatch_width(database.words_per_code(), [&](auto w) {
    constexpr int W = decltype(w)::value;
    const std::int64_t chunk = 4;
    const std::int64_t tasks = (static_cast<std::int64_t>(nq) + chunk - 1) / chunk;
    parallel_for(tasks, t, 1, [&](std::int64_t task) {
      std::vector<std::uint32_t> counts(cells), reduced(cells);
      const std::size_t q0 = static_cast<std::size_t>(task * chunk);
      const std::size_t q1 = std::min(nq, q0 + static_cast<std::size_t>(chunk));
      if (ties == tie_rule::aware) {
        detail::bucketed_positional_popcount<W> pos(cells, database.words_per_code());
        for (std::size_t q = q0; q < q1; ++q)
          with_relevance(query_labels, database_labels, q, [&](const auto& rel) {
            detail::loo_query_tie_aware<W>(queries.row(q), database, rel, pos, counts, reduced, H,
                                           full[q], without.data() + q * K);
          });
      } else {
        std::vector<std::uint16_t> tags(n);
        std::vector<std::uint64_t> scratch;
        detail::index_order_walk walk;
        for (std::size_t q = q0; q < q1; ++q)
          with_relevance(query_labels, database_labels, q, [&](const auto& rel) {
            detail::loo_query_index_order<W>(queries.row(q), database, rel, counts, tags, scratch,
                                             walk, full[q], without.data() + q * K);
          });
      }
    });
  });
  loo_map_result res;
  res.ties = ties;
  res.without_bit.assign(K, 0.0);
  if (nq == 0) return res;
  for (std::size_t q = 0; q < nq; ++q) {
    res.full += full[q];
    for (std::size_t k = 0; k < K; ++k) res.without_bit[k] += without[q * K + k];
  }
  res.full /= static_cast<double>(nq);
  for (double& v : res.without_bit) v /= static_cast<double>(nq);
  return res;
}

}  // namespace nmhash
