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
// deleting a bit changes, so they take one ranking pass per bit: K times the
// work of one index-order MAP.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/device.hpp"
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

// The cell counts of one query: pos.added(cell) and pos.count(cell, bit),
// copied out of the level's counter so that the AP computation below is
// compiled once, outside the dispatched scan.
struct loo_cell_counts {
  std::vector<std::uint32_t> added;
  std::vector<std::uint32_t> bits;  // cells x (64 words)
  std::size_t stride = 0;
  std::uint32_t count(std::size_t cell, std::size_t bit) const { return bits[cell * stride + bit]; }
};

// Adds every database item to the counter cell of its (distance,
// relevance) and copies the counts to `out`.
template <int W, class Counter, class Rel>
void loo_count_cells(const std::uint64_t* q, const packed_codes& db, const Rel& rel, Counter& pos,
                     loo_cell_counts& out) {
  const std::size_t n = db.size(), words = db.words_per_code();
  pos.reset();
  const std::uint64_t* base = db.data();
  if constexpr (W == 1) {
    const std::uint64_t q0 = q[0];
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint64_t x = q0 ^ base[j];
      pos.add(static_cast<std::size_t>(popcount64(x)) << 1 | rel(j), &x);
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
      pos.add(static_cast<std::size_t>(h) << 1 | rel(j), xp);
    }
  }
  pos.finish();
  const std::size_t cells = out.added.size();
  out.stride = 64 * words;
  out.bits.resize(cells * out.stride);
  for (std::size_t cell = 0; cell < cells; ++cell) {
    out.added[cell] = pos.added(cell);
    for (std::size_t bit = 0; bit < out.stride; ++bit) out.bits[cell * out.stride + bit] = pos.count(cell, bit);
  }
}

// Tie-aware AP with all bits and with each bit deleted, for one query,
// from its cell counts.
inline void loo_query_tie_aware(const loo_cell_counts& pos, std::size_t K_bits, const harmonic_numbers& H,
                                double& full, double* without) {
  const int K = static_cast<int>(K_bits);
  const std::vector<std::uint32_t>& counts = pos.added;
  full = tie_aware_ap(counts.data(), K, H);
  // Distances above the largest occupied one contribute nothing.
  int top = K;
  while (top > 0 && counts[2 * static_cast<std::size_t>(top)] == 0 &&
         counts[2 * static_cast<std::size_t>(top) + 1] == 0)
    --top;
  for (int k = 0; k < K; ++k) {
    const std::size_t bk = static_cast<std::size_t>(k);
    const auto without_k = [&](int h, int r) {
      const std::size_t cell = 2 * static_cast<std::size_t>(h) + static_cast<std::size_t>(r);
      return static_cast<double>(counts[cell] - pos.count(cell, bk) + pos.count(cell + 2, bk));
    };
    without[k] = tie_aware_ap_of(without_k, std::min(top, K - 1), H);
  }
}

// The ranking passes of index-order leave-one-bit-out MAP for one query:
// `ranks` is scanned over the distances with all K bits (K + 1 buckets),
// then over the distances without bit k for k = 0..K-1 (K buckets), and
// after each scan on_scan(i) is called, i = 0 for all bits and 1 + k
// without bit k.
template <int W, class Rel, class OnScan>
void loo_index_order_scans(const std::uint64_t* q, const packed_codes& db, const Rel& rel,
                           std::vector<std::uint16_t>& tags, index_order_ranks& ranks, OnScan&& on_scan) {
  const std::size_t n = db.size(), words = db.words_per_code();
  const std::size_t K = db.bits();
  tags.resize(n);
  const item_tag<W, Rel> tag{q, db.data(), words, rel};
  with_isa([&](auto) {
    for (std::size_t j = 0; j < n; ++j) tags[j] = static_cast<std::uint16_t>(tag(j));
  });
  const std::uint16_t* t = tags.data();
  ranks.scan(n, K + 1, [t](std::size_t j) { return static_cast<unsigned>(t[j]); });
  on_scan(std::size_t{0});
  for (std::size_t k = 0; k < K; ++k) {
    const std::uint64_t* col = db.data() + k / 64;
    const unsigned sh = static_cast<unsigned>(k % 64);
    const unsigned qb = static_cast<unsigned>((q[k / 64] >> sh) & 1u);
    ranks.scan(n, K, [=](std::size_t j) {
      const unsigned differs = static_cast<unsigned>((col[j * words] >> sh) & 1u) ^ qb;
      return static_cast<unsigned>(t[j]) - (differs << 1);
    });
    on_scan(k + 1);
  }
}

// Index-order AP with all bits and with each bit deleted, for one query.
template <int W, class Rel>
void loo_query_index_order(const std::uint64_t* q, const packed_codes& db, const Rel& rel,
                           std::vector<std::uint16_t>& tags, index_order_ranks& ranks,
                           index_order_stats& stats, double& full, double* without) {
  static const std::vector<std::size_t> none;
  loo_index_order_scans<W>(q, db, rel, tags, ranks, [&](std::size_t i) {
    ranks.finish();
    stats.compute(ranks.ranks(), ranks.relevant(), none, none);
    (i == 0 ? full : without[i - 1]) = stats.ap;
  });
}

// The means over queries of per-query values (full[q], without[q K + k]).
inline loo_map_result loo_means(const std::vector<double>& full, const std::vector<double>& without,
                                std::size_t K, tie_rule ties) {
  const std::size_t nq = full.size();
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

}  // namespace detail

// Leave-one-bit-out MAP of the queries against the database. Needs K >= 2.
// Device: nmhash::cpu, or nmhash::cuda with <nmhash/cuda/api.cuh> (nvcc;
// tie-aware only, K <= 128).
template <class Device = cpu>
loo_map_result leave_one_bit_out_map(const packed_codes& queries, const packed_codes& database,
                                     const labels& query_labels, const labels& database_labels,
                                     tie_rule ties = tie_rule::aware, threads t = {}) {
  static_assert(std::is_same_v<Device, cpu>,
                "leave_one_bit_out_map<nmhash::cuda> is declared in <nmhash/cuda/api.cuh>");
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
      const std::size_t q0 = static_cast<std::size_t>(task * chunk);
      const std::size_t q1 = std::min(nq, q0 + static_cast<std::size_t>(chunk));
      if (ties == tie_rule::aware) {
        detail::loo_cell_counts cc;
        cc.added.resize(cells);
        for (std::size_t q = q0; q < q1; ++q) {
          with_relevance(query_labels, database_labels, q, [&](const auto& rel) {
            with_isa([&](auto level) {
              detail::cell_bit_counter<W, decltype(level)::value> pos(cells, database.words_per_code());
              detail::loo_count_cells<W>(queries.row(q), database, rel, pos, cc);
            });
          });
          detail::loo_query_tie_aware(cc, K, H, full[q], without.data() + q * K);
        }
      } else {
        std::vector<std::uint16_t> tags(n);
        detail::index_order_ranks ranks;
        detail::index_order_stats stats;
        for (std::size_t q = q0; q < q1; ++q)
          with_relevance(query_labels, database_labels, q, [&](const auto& rel) {
            detail::loo_query_index_order<W>(queries.row(q), database, rel, tags, ranks, stats, full[q],
                                             without.data() + q * K);
          });
      }
    });
  });
  return detail::loo_means(full, without, K, ties);
}

}  // namespace nmhash
