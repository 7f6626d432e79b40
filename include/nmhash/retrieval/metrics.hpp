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

namespace detail {

// Every per-query value of evaluate(), and their means. score() takes one
// query's histogram counts[2 h + r] and, for index-order values, the ranks
// of its relevant items; it is the only place these values are computed,
// whether the counts come from one process or are reduced over shards.
class query_scores {
 public:
  query_scores(std::size_t queries, std::size_t database, std::size_t bits, const evaluation_options& opt)
      : opt_(opt), nq_(queries), n_(database), K_(static_cast<int>(bits)), na_(opt.map_at.size()),
        np_(opt.precision_at.size()), nr_(bits + 1), H_(harmonic_table_size(database)), ap_aw_(nq_), ap_io_(nq_),
        apk_aw_(nq_ * na_), apk_io_(nq_ * na_), pn_aw_(nq_ * np_), pn_io_(nq_ * np_), prc_p_(nq_ * nr_),
        prc_r_(nq_ * nr_) {}

  // Thread-safe for distinct q. `stats` is only read with opt.index_order.
  void score(std::size_t q, const std::uint32_t* cts, const index_order_ranks* ranks, index_order_stats& stats) {
    ap_aw_[q] = tie_aware_ap(cts, K_, H_);
    for (std::size_t a = 0; a < na_; ++a) apk_aw_[q * na_ + a] = tie_aware_ap_at(cts, K_, opt_.map_at[a], H_);
    const double top_cap = static_cast<double>(n_);
    for (std::size_t a = 0; a < np_; ++a) {
      const double top = std::min(top_cap, static_cast<double>(opt_.precision_at[a]));
      pn_aw_[q * np_ + a] = top > 0 ? tie_aware_relevant_in_top(cts, K_, opt_.precision_at[a]) / top : 0.0;
    }
    radius_curve(cts, K_, prc_p_.data() + q * nr_, prc_r_.data() + q * nr_);
    if (opt_.index_order) {
      stats.compute(ranks->ranks(), ranks->relevant(), opt_.map_at, opt_.precision_at);
      ap_io_[q] = stats.ap;
      for (std::size_t a = 0; a < na_; ++a) apk_io_[q * na_ + a] = stats.ap_at[a];
      for (std::size_t a = 0; a < np_; ++a) {
        const double top = std::min(top_cap, static_cast<double>(opt_.precision_at[a]));
        pn_io_[q * np_ + a] = top > 0 ? stats.rel_in_top[a] / top : 0.0;
      }
    }
  }

  evaluation finish() {
    const std::size_t nq = nq_;
    auto mean = [nq](const std::vector<double>& v, std::size_t stride, std::size_t off) {
      double s = 0;
      for (std::size_t q = 0; q < nq; ++q) s += v[q * stride + off];
      return nq > 0 ? s / static_cast<double>(nq) : 0.0;
    };
    const bool io = opt_.index_order;
    evaluation ev;
    ev.queries = nq_;
    ev.database = n_;
    ev.bits = static_cast<std::size_t>(K_);
    ev.map = {mean(ap_aw_, 1, 0), io ? mean(ap_io_, 1, 0) : 0.0};
    ev.map_at_k = opt_.map_at;
    for (std::size_t a = 0; a < na_; ++a)
      ev.map_at.push_back({mean(apk_aw_, na_, a), io ? mean(apk_io_, na_, a) : 0.0});
    ev.precision_at_n = opt_.precision_at;
    for (std::size_t a = 0; a < np_; ++a)
      ev.precision_at.push_back({mean(pn_aw_, np_, a), io ? mean(pn_io_, np_, a) : 0.0});
    ev.radius = opt_.radius;
    for (std::size_t r = 0; r < nr_; ++r) ev.pr_curve.push_back({mean(prc_p_, nr_, r), mean(prc_r_, nr_, r)});
    ev.within_radius = ev.pr_curve[std::min<std::size_t>(static_cast<std::size_t>(opt_.radius), nr_ - 1)];
    if (opt_.per_query) {
      ev.ap_tie_aware = std::move(ap_aw_);
      if (io) ev.ap_index_order = std::move(ap_io_);
    }
    return ev;
  }

 private:
  const evaluation_options& opt_;
  std::size_t nq_, n_;
  int K_;
  std::size_t na_, np_, nr_;
  harmonic_numbers H_;
  std::vector<double> ap_aw_, ap_io_, apk_aw_, apk_io_, pn_aw_, pn_io_, prc_p_, prc_r_;
};

inline void check_evaluation_options(const evaluation_options& opt, const char* who) {
  require(opt.radius >= 0, who, ": radius must be >= 0, got ", opt.radius);
  for (std::size_t k : opt.map_at) require(k >= 1, who, ": MAP@k needs k >= 1");
  for (std::size_t k : opt.precision_at) require(k >= 1, who, ": precision@N needs N >= 1");
}

}  // namespace detail

inline evaluation evaluate(const packed_codes& queries, const packed_codes& database,
                           const labels& query_labels, const labels& database_labels,
                           const evaluation_options& opt = {}) {
  detail::check_inputs(queries, database, query_labels, database_labels, "evaluate");
  detail::check_evaluation_options(opt, "evaluate");
  const std::size_t nq = queries.size(), n = database.size(), words = database.words_per_code();
  const std::size_t nbins = 2 * (database.bits() + 1);
  detail::query_scores scores(nq, n, database.bits(), opt);

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
        scores.score(q, counts.data(), &ranks, stats);
      }
    });
  });
  return scores.finish();
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
