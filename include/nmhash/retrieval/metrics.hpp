// Retrieval quality of query codes against database codes: MAP over the
// full ranking, MAP@k, precision@N, precision and recall within a Hamming
// radius and the precision-recall curve over radii, in both tie conventions
// of the fmnist-dpsh protocol (see average_precision.hpp for the
// definitions). Every metric is computed from one O(N + K) histogram pass
// per query plus, for index-order values, one O(N) pass over the recorded
// distances; nothing is sorted.
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
#include "nmhash/retrieval/histogram.hpp"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash {

// How items at equal Hamming distance are ordered.
//  - aware: the expectation over uniformly random orders (the default).
//  - index_order: ascending database index, what a stable sort gives and
//    what public evaluation code (numpy argsort) computes.
enum class tie_rule { aware, index_order };

struct tie_pair {
  double tie_aware = 0;
  double index_order = 0;
  double get(tie_rule t) const { return t == tie_rule::aware ? tie_aware : index_order; }
};

struct evaluation_options {
  // k values for MAP@k (e.g. 5000 for NUS-WIDE-style data).
  std::vector<std::size_t> map_at{};
  // Radius of the precision / recall within a Hamming ball (2 in the paper).
  int radius = 2;
  // N values for precision@N (paper Fig. 5).
  std::vector<std::size_t> precision_at{1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
  // Also compute the index-order values (one more O(N) pass per query).
  bool index_order = true;
  // Keep each query's AP.
  bool per_query = false;
  nmhash::threads threads{};
};

struct evaluation {
  std::size_t queries = 0;
  std::size_t database = 0;
  std::size_t bits = 0;
  tie_pair map;
  std::vector<std::size_t> map_at_k;
  std::vector<tie_pair> map_at;
  int radius = 0;
  precision_recall within_radius;
  // Mean precision and recall within radius r, for r = 0..K.
  std::vector<precision_recall> pr_curve;
  std::vector<std::size_t> precision_at_n;
  std::vector<tie_pair> precision_at;
  // Per-query AP (only with evaluation_options::per_query).
  std::vector<double> ap_tie_aware;
  std::vector<double> ap_index_order;
};

namespace detail {

// Index-order AP, AP@k and relevant-in-top-N of one query from the ranks
// of its relevant items (rank among relevant << 32 | rank).
struct index_order_stats {
  double ap = 0;
  std::vector<double> ap_at;       // per map_at entry
  std::vector<double> rel_in_top;  // per precision_at entry

  void compute(const std::uint64_t* ranks, std::size_t relevant,
               const std::vector<std::size_t>& map_at, const std::vector<std::size_t>& prec_at) {
    double sum = 0;
    for (std::size_t i = 0; i < relevant; ++i)
      sum += static_cast<double>(ranks[i] >> 32) / static_cast<double>(ranks[i] & 0xFFFFFFFFu);
    ap = relevant > 0 ? sum / static_cast<double>(relevant) : 0.0;
    ap_at.assign(map_at.size(), 0.0);
    for (std::size_t a = 0; a < map_at.size(); ++a) {
      double s = 0;
      std::size_t hits = 0;
      for (std::size_t i = 0; i < relevant; ++i) {
        const std::uint64_t pos = ranks[i] & 0xFFFFFFFFu;
        if (pos <= map_at[a]) {
          s += static_cast<double>(ranks[i] >> 32) / static_cast<double>(pos);
          ++hits;
        }
      }
      ap_at[a] = hits > 0 ? s / static_cast<double>(hits) : 0.0;
    }
    rel_in_top.assign(prec_at.size(), 0.0);
    for (std::size_t a = 0; a < prec_at.size(); ++a) {
      std::size_t hits = 0;
      for (std::size_t i = 0; i < relevant; ++i) hits += (ranks[i] & 0xFFFFFFFFu) <= prec_at[a];
      rel_in_top[a] = static_cast<double>(hits);
    }
  }
};

inline void check_inputs(const packed_codes& q, const packed_codes& db, const labels& ql,
                         const labels& dl, const char* who) {
  check_same_bits(q, db, who);
  check_labels(ql, q.size(), dl, db.size(), who);
  require(db.size() < (std::size_t{1} << 32), who, ": database of ", db.size(),
          " items exceeds the 2^32 - 1 supported by the histograms");
}

inline std::size_t harmonic_table_size(std::size_t n) {
  return std::clamp<std::size_t>(n + 1, 1024, std::size_t{1} << 16);
}

}  // namespace detail

inline evaluation evaluate(const packed_codes& queries, const packed_codes& database,
                           const labels& query_labels, const labels& database_labels,
                           const evaluation_options& opt = {}) {
  detail::check_inputs(queries, database, query_labels, database_labels, "evaluate");
  require(opt.radius >= 0, "evaluate: radius must be >= 0, got ", opt.radius);
  for (std::size_t k : opt.map_at) require(k >= 1, "evaluate: MAP@k needs k >= 1");
  for (std::size_t k : opt.precision_at) require(k >= 1, "evaluate: precision@N needs N >= 1");
  const std::size_t nq = queries.size(), n = database.size(), words = database.words_per_code();
  const int K = static_cast<int>(database.bits());
  const std::size_t nbins = 2 * (static_cast<std::size_t>(K) + 1);
  const harmonic_numbers H(detail::harmonic_table_size(n));

  // Per-query values, averaged at the end.
  const std::size_t na = opt.map_at.size(), np = opt.precision_at.size();
  const std::size_t nr = static_cast<std::size_t>(K) + 1;
  std::vector<double> ap_aw(nq), ap_io(nq), apk_aw(nq * na), apk_io(nq * na), pn_aw(nq * np),
      pn_io(nq * np), prc_p(nq * nr), prc_r(nq * nr);

  dispatch_width(words, [&](auto w) {
    constexpr int W = decltype(w)::value;
    const std::int64_t chunk = 8;
    const std::int64_t tasks = (static_cast<std::int64_t>(nq) + chunk - 1) / chunk;
    parallel_for(tasks, opt.threads, 1, [&](std::int64_t task) {
      std::vector<std::uint32_t> counts(nbins);
      detail::index_order_ranks ranks;
      detail::index_order_stats stats;
      const std::size_t q0 = static_cast<std::size_t>(task * chunk);
      const std::size_t q1 = std::min(nq, q0 + static_cast<std::size_t>(chunk));
      for (std::size_t q = q0; q < q1; ++q) {
        std::fill(counts.begin(), counts.end(), 0u);
        with_relevance(query_labels, database_labels, q, [&](const auto& rel) {
          const std::uint64_t* qc = queries.row(q);
          if (opt.index_order) {
            with_isa([&](auto) {
              ranks.scan(n, nbins / 2,
                         detail::item_tag<W, std::decay_t<decltype(rel)>>{qc, database.data(), words, rel});
            });
            ranks.histogram(counts.data());
            ranks.finish();
          } else {
            with_isa([&](auto) {
              detail::distance_relevance_histogram<W>(qc, database.data(), n, words, rel, counts.data(), nbins);
            });
          }
        });
        const std::uint32_t* cts = counts.data();
        ap_aw[q] = tie_aware_ap(cts, K, H);
        for (std::size_t a = 0; a < na; ++a)
          apk_aw[q * na + a] = tie_aware_ap_at(cts, K, opt.map_at[a], H);
        const double top_cap = static_cast<double>(n);
        for (std::size_t a = 0; a < np; ++a) {
          const double top = std::min(top_cap, static_cast<double>(opt.precision_at[a]));
          pn_aw[q * np + a] =
              top > 0 ? tie_aware_relevant_in_top(cts, K, opt.precision_at[a]) / top : 0.0;
        }
        radius_curve(cts, K, prc_p.data() + q * nr, prc_r.data() + q * nr);
        if (opt.index_order) {
          stats.compute(ranks.ranks(), ranks.relevant(), opt.map_at, opt.precision_at);
          ap_io[q] = stats.ap;
          for (std::size_t a = 0; a < na; ++a) apk_io[q * na + a] = stats.ap_at[a];
          for (std::size_t a = 0; a < np; ++a) {
            const double top = std::min(top_cap, static_cast<double>(opt.precision_at[a]));
            pn_io[q * np + a] = top > 0 ? stats.rel_in_top[a] / top : 0.0;
          }
        }
      }
    });
  });

  auto mean = [nq](const std::vector<double>& v, std::size_t stride, std::size_t off) {
    double s = 0;
    for (std::size_t q = 0; q < nq; ++q) s += v[q * stride + off];
    return nq > 0 ? s / static_cast<double>(nq) : 0.0;
  };
  evaluation ev;
  ev.queries = nq;
  ev.database = n;
  ev.bits = static_cast<std::size_t>(K);
  ev.map = {mean(ap_aw, 1, 0), opt.index_order ? mean(ap_io, 1, 0) : 0.0};
  ev.map_at_k = opt.map_at;
  for (std::size_t a = 0; a < na; ++a)
    ev.map_at.push_back({mean(apk_aw, na, a), opt.index_order ? mean(apk_io, na, a) : 0.0});
  ev.precision_at_n = opt.precision_at;
  for (std::size_t a = 0; a < np; ++a)
    ev.precision_at.push_back({mean(pn_aw, np, a), opt.index_order ? mean(pn_io, np, a) : 0.0});
  ev.radius = opt.radius;
  for (std::size_t r = 0; r < nr; ++r) ev.pr_curve.push_back({mean(prc_p, nr, r), mean(prc_r, nr, r)});
  ev.within_radius = ev.pr_curve[std::min<std::size_t>(static_cast<std::size_t>(opt.radius), nr - 1)];
  if (opt.per_query) {
    ev.ap_tie_aware = std::move(ap_aw);
    if (opt.index_order) ev.ap_index_order = std::move(ap_io);
  }
  return ev;
}

// MAP over the full ranking only: the fast path the training loop and the
// benchmarks use. Device: nmhash::cpu, or nmhash::cuda with
// <nmhash/cuda/api.cuh> (nvcc).
template <class Device = cpu>
tie_pair mean_average_precision(const packed_codes& queries, const packed_codes& database,
                                const labels& query_labels, const labels& database_labels,
                                threads t = {}, bool index_order = true) {
  static_assert(std::is_same_v<Device, cpu>,
                "mean_average_precision<nmhash::cuda> is declared in <nmhash/cuda/api.cuh>");
  evaluation_options opt;
  opt.precision_at.clear();
  opt.index_order = index_order;
  opt.threads = t;
  return evaluate(queries, database, query_labels, database_labels, opt).map;
}

}  // namespace nmhash
