// Retrieval metrics over a database split across the ranks of a
// communicator: each rank holds a consecutive shard of the database codes
// and labels (the shards in rank order are the database, as
// distribute.hpp's scatter cuts it), the root holds the queries. The
// values are those evaluate() and leave_one_bit_out_map() give in one
// process on the whole database, bit for bit: the root computes them with
// the same code from the same counts.
//
// What travels. Tie-aware values (MAP, MAP@k, precision@N, precision and
// recall within every radius, tie-aware leave-one-bit-out MAP) depend on
// each query's histogram of (distance, relevance) counts, and for the
// leave-one-bit-out values also per-bit counts of each cell: each rank
// counts over its shard and one sum reduction gives the root the whole
// database's counts, 2 (K + 1) integers per query (times 1 + 64 ceil(K/64)
// for leave-one-bit-out MAP), whatever the database size. Index-order
// values need the global rank of every relevant item: each rank ranks its
// shard and sends the root, per query, its per-distance counts and the
// within-tie-group rank and distance of each relevant item (10 bytes per
// relevant item); the root offsets each shard by the counts of the shards
// before it. That costs a gather of about 10 x (relevant items) bytes per
// query and O(relevant items) work on the root, K + 1 times over for
// index-order leave-one-bit-out MAP; set evaluation_options::index_order
// to false when only tie-aware values are needed.
//
// Every function here is collective; the queries and their labels are
// taken from the root (other ranks may pass empty ones), the options too,
// except the threads each rank uses. The result is returned on every rank.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/mpi/comm.hpp"
#include "nmhash/mpi/distribute.hpp"
#include "nmhash/retrieval/histogram.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/loo_map.hpp"
#include "nmhash/retrieval/metrics.hpp"

namespace nmhash::mpi {

namespace detail {

using nmhash::detail::index_order_ranks;
using nmhash::detail::index_order_stats;

// The ranking scans a rank sends the root: per scan, the u64 stream holds
// [buckets, relevant, cursors (buckets), within-group ranks (relevant)] and
// the u16 stream the distances of the relevant items.
struct scan_records {
  std::vector<std::uint64_t> words;
  std::vector<std::uint16_t> dists;

  void add(const index_order_ranks& r) {
    words.push_back(r.buckets());
    words.push_back(r.relevant());
    words.insert(words.end(), r.cursors(), r.cursors() + r.buckets());
    words.insert(words.end(), r.ranks(), r.ranks() + r.relevant());
    dists.insert(dists.end(), r.distances(), r.distances() + r.relevant());
  }
  void append(const scan_records& o) {
    words.insert(words.end(), o.words.begin(), o.words.end());
    dists.insert(dists.end(), o.dists.begin(), o.dists.end());
  }
};

// Every rank's ranking scans gathered on the root (collective): each rank
// passes its scans, `records` per rank in the same order; on the root,
// assemble(i, ranks) joins scan i of every rank.
class gathered_scans {
 public:
  gathered_scans(const communicator& comm, const std::vector<scan_records>& local, int root, std::size_t records)
      : records_(records) {
    scan_records mine;
    for (const auto& r : local) mine.append(r);
    std::vector<std::size_t> word_counts, dist_counts;
    words_ = comm.gather(mine.words, root, &word_counts);
    dists_ = comm.gather(mine.dists, root, &dist_counts);
    if (comm.rank() != root) return;
    // Where scan i of rank s starts in the gathered streams.
    const std::size_t P = word_counts.size();
    word_at_.resize(P * records_);
    dist_at_.resize(P * records_);
    std::size_t w = 0, d = 0;
    for (std::size_t s = 0; s < P; ++s) {
      const std::size_t wend = w + word_counts[s], dend = d + dist_counts[s];
      for (std::size_t i = 0; i < records_; ++i) {
        require(w + 2 <= wend, "mpi: rank ", s, " sent fewer ranking records than expected");
        word_at_[s * records_ + i] = w;
        dist_at_[s * records_ + i] = d;
        const std::size_t buckets = static_cast<std::size_t>(words_[w]), rel = static_cast<std::size_t>(words_[w + 1]);
        w += 2 + buckets + rel;
        d += rel;
      }
      require(w == wend && d == dend, "mpi: rank ", s, " sent ranking records of an unexpected size");
    }
  }

  // Scan i of every rank, in rank order, as one scan of the database (root).
  void assemble(std::size_t i, index_order_ranks& ranks) const {
    const std::size_t P = word_at_.size() / records_;
    for (std::size_t s = 0; s < P; ++s) {
      const std::uint64_t* w = words_.data() + word_at_[s * records_ + i];
      const auto buckets = static_cast<std::size_t>(w[0]), rel = static_cast<std::size_t>(w[1]);
      if (s == 0) ranks.begin(buckets);
      require(buckets == ranks.buckets(), "mpi: ranking records of different lengths");
      ranks.append(w + 2, w + 2 + buckets, dists_.data() + dist_at_[s * records_ + i], rel);
    }
  }

 private:
  std::size_t records_;
  std::vector<std::uint64_t> words_;
  std::vector<std::uint16_t> dists_;
  std::vector<std::size_t> word_at_, dist_at_;  // [rank * records + i]
};

inline std::vector<std::uint64_t> to_u64(const std::vector<std::size_t>& v) { return {v.begin(), v.end()}; }
inline std::vector<std::size_t> to_size(const std::vector<std::uint64_t>& v) {
  std::vector<std::size_t> out;
  for (std::uint64_t x : v) out.push_back(static_cast<std::size_t>(x));
  return out;
}

// The root's options on every rank; each rank keeps its own threads.
inline evaluation_options broadcast_options(const communicator& c, const evaluation_options& opt, int root) {
  evaluation_options o = opt;
  std::vector<std::uint64_t> map_at = to_u64(opt.map_at), prec_at = to_u64(opt.precision_at);
  c.broadcast(map_at, root);
  c.broadcast(prec_at, root);
  std::int32_t flags[3] = {opt.radius, opt.index_order ? 1 : 0, opt.per_query ? 1 : 0};
  c.broadcast(flags, 3, root);
  o.map_at = to_size(map_at);
  o.precision_at = to_size(prec_at);
  o.radius = flags[0];
  o.index_order = flags[1] != 0;
  o.per_query = flags[2] != 0;
  return o;
}

inline void broadcast_evaluation(const communicator& c, evaluation& ev, int root) {
  std::uint64_t head[4] = {ev.queries, ev.database, ev.bits, static_cast<std::uint64_t>(ev.radius)};
  c.broadcast(head, 4, root);
  std::vector<std::uint64_t> map_at_k = to_u64(ev.map_at_k), prec_n = to_u64(ev.precision_at_n);
  c.broadcast(map_at_k, root);
  c.broadcast(prec_n, root);
  std::vector<double> v;
  if (c.rank() == root) {
    v = {ev.map.tie_aware, ev.map.index_order, ev.within_radius.precision, ev.within_radius.recall};
    for (const tie_pair& p : ev.map_at) v.insert(v.end(), {p.tie_aware, p.index_order});
    for (const tie_pair& p : ev.precision_at) v.insert(v.end(), {p.tie_aware, p.index_order});
    for (const precision_recall& p : ev.pr_curve) v.insert(v.end(), {p.precision, p.recall});
  }
  c.broadcast(v, root);
  c.broadcast(ev.ap_tie_aware, root);
  c.broadcast(ev.ap_index_order, root);
  if (c.rank() == root) return;
  ev.queries = static_cast<std::size_t>(head[0]);
  ev.database = static_cast<std::size_t>(head[1]);
  ev.bits = static_cast<std::size_t>(head[2]);
  ev.radius = static_cast<int>(head[3]);
  ev.map_at_k = to_size(map_at_k);
  ev.precision_at_n = to_size(prec_n);
  std::size_t i = 0;
  ev.map = {v[0], v[1]};
  ev.within_radius = {v[2], v[3]};
  i = 4;
  ev.map_at.clear();
  for (std::size_t a = 0; a < map_at_k.size(); ++a, i += 2) ev.map_at.push_back({v[i], v[i + 1]});
  ev.precision_at.clear();
  for (std::size_t a = 0; a < prec_n.size(); ++a, i += 2) ev.precision_at.push_back({v[i], v[i + 1]});
  ev.pr_curve.clear();
  for (; i + 1 < v.size(); i += 2) ev.pr_curve.push_back({v[i], v[i + 1]});
}

// Queries and labels from the root; checks every rank's shard against
// them; returns the database size.
inline std::size_t prepare(const communicator& c, packed_codes& q, labels& ql, const packed_codes& db,
                           const labels& dl, int root, const char* who) {
  broadcast(c, q, root);
  broadcast(c, ql, root);
  std::string problem;
  try {
    nmhash::detail::check_same_bits(q, db, who);
    nmhash::detail::check_labels(ql, q.size(), dl, db.size(), who);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  agree(c, problem);
  const auto n = static_cast<std::size_t>(c.all_reduce<std::uint64_t>(db.size(), MPI_SUM));
  agree(c, c.rank() == root && n >= (std::size_t{1} << 32)
               ? nmhash::detail::concat(who, ": database of ", n, " items exceeds the 2^32 - 1 supported by the histograms")
               : std::string());
  return n;
}

// Queries per round: at least one, at most `cap`, and about `budget`
// elements on the root per round.
inline std::size_t block_size(std::size_t nq, std::size_t per_query, std::size_t budget, std::size_t cap) {
  return std::max<std::size_t>(1, std::min({nq, cap, budget / std::max<std::size_t>(per_query, 1)}));
}

}  // namespace detail

inline evaluation evaluate(const communicator& comm, const packed_codes& queries, const packed_codes& database,
                           const labels& query_labels, const labels& database_labels,
                           const evaluation_options& options = {}, int root = 0) {
  const char* who = "mpi::evaluate";
  const evaluation_options opt = detail::broadcast_options(comm, options, root);
  agree(comm, [&] {
    try {
      nmhash::detail::check_evaluation_options(opt, who);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  }());
  packed_codes q = queries;
  labels ql = query_labels;
  const std::size_t N = detail::prepare(comm, q, ql, database, database_labels, root, who);
  const bool is_root = comm.rank() == root;
  const std::size_t nq = q.size(), n = database.size(), words = database.words_per_code();
  const std::size_t K = database.bits(), nbins = 2 * (K + 1), P = static_cast<std::size_t>(comm.size());
  std::unique_ptr<nmhash::detail::query_scores> scores;
  if (is_root) scores = std::make_unique<nmhash::detail::query_scores>(nq, N, K, opt);

  const std::size_t block =
      opt.index_order ? detail::block_size(nq, 2 * P + P * (K + 1) + N, std::size_t{1} << 26, 64)
                      : detail::block_size(nq, nbins, std::size_t{1} << 24, 256);
  dispatch_width(words, [&](auto w) {
    constexpr int W = decltype(w)::value;
    for (std::size_t q0 = 0; q0 < nq; q0 += block) {
      const std::size_t q1 = std::min(nq, q0 + block), nb = q1 - q0;
      std::vector<std::uint32_t> counts(opt.index_order ? 0 : nb * nbins, 0u);
      std::vector<detail::scan_records> recs(opt.index_order ? nb : 0);
      parallel_for(static_cast<std::int64_t>(nb), opt.threads, 1, [&](std::int64_t i) {
        const std::size_t qi = q0 + static_cast<std::size_t>(i);
        with_relevance(ql, database_labels, qi, [&](const auto& rel) {
          const std::uint64_t* qc = q.row(qi);
          if (opt.index_order) {
            detail::index_order_ranks ranks;
            with_isa([&](auto) {
              ranks.scan(n, K + 1,
                         nmhash::detail::item_tag<W, std::decay_t<decltype(rel)>>{qc, database.data(), words, rel});
            });
            recs[static_cast<std::size_t>(i)].add(ranks);
          } else {
            with_isa([&](auto) {
              nmhash::detail::distance_relevance_histogram<W>(qc, database.data(), n, words, rel,
                                                              counts.data() + static_cast<std::size_t>(i) * nbins,
                                                              nbins);
            });
          }
        });
      });
      if (!opt.index_order) {
        comm.reduce_sum(counts.data(), counts.size(), root);
        if (is_root)
          parallel_for(static_cast<std::int64_t>(nb), opt.threads, 1, [&](std::int64_t i) {
            detail::index_order_stats stats;
            scores->score(q0 + static_cast<std::size_t>(i), counts.data() + static_cast<std::size_t>(i) * nbins,
                          nullptr, stats);
          });
        continue;
      }
      const detail::gathered_scans scans(comm, recs, root, nb);
      recs.clear();
      if (!is_root) continue;
      parallel_for(static_cast<std::int64_t>(nb), opt.threads, 1, [&](std::int64_t i) {
        detail::index_order_ranks ranks;
        detail::index_order_stats stats;
        std::vector<std::uint32_t> cts(nbins);
        scans.assemble(static_cast<std::size_t>(i), ranks);
        ranks.histogram(cts.data());
        ranks.finish();
        scores->score(q0 + static_cast<std::size_t>(i), cts.data(), &ranks, stats);
      });
    }
  });
  evaluation ev;
  if (is_root) ev = scores->finish();
  detail::broadcast_evaluation(comm, ev, root);
  return ev;
}

// MAP over the full ranking only (collective), as nmhash::mean_average_precision.
inline tie_pair mean_average_precision(const communicator& comm, const packed_codes& queries,
                                       const packed_codes& database, const labels& query_labels,
                                       const labels& database_labels, threads t = {}, bool index_order = true,
                                       int root = 0) {
  evaluation_options opt;
  opt.precision_at.clear();
  opt.index_order = index_order;
  opt.threads = t;
  return evaluate(comm, queries, database, query_labels, database_labels, opt, root).map;
}

// Leave-one-bit-out MAP over the sharded database (collective), as
// nmhash::leave_one_bit_out_map in one process. Needs K >= 2.
inline loo_map_result leave_one_bit_out_map(const communicator& comm, const packed_codes& queries,
                                            const packed_codes& database, const labels& query_labels,
                                            const labels& database_labels, tie_rule ties = tie_rule::aware,
                                            threads t = {}, int root = 0) {
  const char* who = "mpi::leave_one_bit_out_map";
  std::int32_t tie_code = ties == tie_rule::aware ? 0 : 1;
  comm.broadcast(tie_code, root);
  ties = tie_code == 0 ? tie_rule::aware : tie_rule::index_order;
  packed_codes q = queries;
  labels ql = query_labels;
  const std::size_t N = detail::prepare(comm, q, ql, database, database_labels, root, who);
  agree(comm, comm.rank() == root && database.bits() < 2
                  ? nmhash::detail::concat(who, ": needs at least 2 bits, got K = ", database.bits())
                  : std::string());
  const bool is_root = comm.rank() == root;
  const std::size_t nq = q.size(), words = database.words_per_code(), K = database.bits();
  const std::size_t cells = 2 * (K + 1), stride = 64 * words, P = static_cast<std::size_t>(comm.size());
  const harmonic_numbers H(nmhash::detail::harmonic_table_size(N));
  std::vector<double> full(is_root ? nq : 0), without(is_root ? nq * K : 0);

  const std::size_t per_query = ties == tie_rule::aware ? cells * (1 + stride)
                                                         : (K + 1) * (2 * P + P * (K + 1) + N);
  const std::size_t block = detail::block_size(nq, per_query, std::size_t{1} << 26, 64);
  dispatch_width(words, [&](auto w) {
    constexpr int W = decltype(w)::value;
    for (std::size_t q0 = 0; q0 < nq; q0 += block) {
      const std::size_t q1 = std::min(nq, q0 + block), nb = q1 - q0;
      if (ties == tie_rule::aware) {
        const std::size_t per = cells * (1 + stride);
        std::vector<std::uint32_t> buf(nb * per, 0u);
        parallel_for(static_cast<std::int64_t>(nb), t, 1, [&](std::int64_t i) {
          const std::size_t qi = q0 + static_cast<std::size_t>(i);
          nmhash::detail::loo_cell_counts cc;
          cc.added.resize(cells);
          with_relevance(ql, database_labels, qi, [&](const auto& rel) {
            with_isa([&](auto level) {
              nmhash::detail::cell_bit_counter<W, decltype(level)::value> pos(cells, words);
              nmhash::detail::loo_count_cells<W>(q.row(qi), database, rel, pos, cc);
            });
          });
          std::uint32_t* out = buf.data() + static_cast<std::size_t>(i) * per;
          std::copy(cc.added.begin(), cc.added.end(), out);
          std::copy(cc.bits.begin(), cc.bits.end(), out + cells);
        });
        comm.reduce_sum(buf.data(), buf.size(), root);
        if (!is_root) continue;
        parallel_for(static_cast<std::int64_t>(nb), t, 1, [&](std::int64_t i) {
          const std::size_t qi = q0 + static_cast<std::size_t>(i);
          const std::uint32_t* in = buf.data() + static_cast<std::size_t>(i) * per;
          nmhash::detail::loo_cell_counts cc;
          cc.added.assign(in, in + cells);
          cc.bits.assign(in + cells, in + per);
          cc.stride = stride;
          nmhash::detail::loo_query_tie_aware(cc, K, H, full[qi], without.data() + qi * K);
        });
        continue;
      }
      std::vector<detail::scan_records> recs(nb);
      parallel_for(static_cast<std::int64_t>(nb), t, 1, [&](std::int64_t i) {
        const std::size_t qi = q0 + static_cast<std::size_t>(i);
        std::vector<std::uint16_t> tags;
        detail::index_order_ranks ranks;
        with_relevance(ql, database_labels, qi, [&](const auto& rel) {
          nmhash::detail::loo_index_order_scans<W>(q.row(qi), database, rel, tags, ranks,
                                                   [&](std::size_t) { recs[static_cast<std::size_t>(i)].add(ranks); });
        });
      });
      const detail::gathered_scans scans(comm, recs, root, nb * (K + 1));
      recs.clear();
      if (!is_root) continue;
      parallel_for(static_cast<std::int64_t>(nb), t, 1, [&](std::int64_t i) {
        static const std::vector<std::size_t> none;
        const std::size_t qi = q0 + static_cast<std::size_t>(i);
        detail::index_order_ranks ranks;
        detail::index_order_stats stats;
        for (std::size_t s = 0; s <= K; ++s) {
          scans.assemble(static_cast<std::size_t>(i) * (K + 1) + s, ranks);
          ranks.finish();
          stats.compute(ranks.ranks(), ranks.relevant(), none, none);
          (s == 0 ? full[qi] : without[qi * K + s - 1]) = stats.ap;
        }
      });
    }
  });
  loo_map_result res;
  if (is_root) res = nmhash::detail::loo_means(full, without, K, ties);
  res.ties = ties;
  comm.broadcast(res.full, root);
  comm.broadcast(res.without_bit, root);
  return res;
}

}  // namespace nmhash::mpi
