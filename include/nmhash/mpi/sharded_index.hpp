// nmhash::mpi::sharded_index: a binary_index split over the ranks of a
// communicator, each rank holding one shard, searched as one index.
//
// Order. The shards in rank order form one database: shard r's codes come
// after those of shards 0..r-1. A search returns exactly what a single
// binary_index holding that database returns: top-k sorted by (distance,
// position in the database) with FAISS's padding, range results in
// database order. Ids: shards that number their codes by position give
// global positions (a code's position in its shard plus the sizes of the
// shards before it, what one index would number it); shards that hold ids
// (add_with_ids) give their ids. Every non-empty shard must be of the same
// kind, and every shard must have the same K.
//
// Collective calls. search and range_search are collective over the
// communicator: every rank calls them, the queries are taken from the root
// and broadcast, each rank scans its shard, and the root merges the
// results (one gather of queries x k distances and ids per rank). The
// result is complete on the root; the other ranks receive an empty result.
// Writes (shard().add, remove_ids, ...) are local and need no other rank;
// the rules of binary_index hold for each shard.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/mpi/comm.hpp"
#include "nmhash/mpi/distribute.hpp"

namespace nmhash::mpi {

class sharded_index {
 public:
  // Collective: checks that every shard has the same K.
  sharded_index(communicator comm, binary_index shard) : comm_(std::move(comm)), shard_(std::move(shard)) {
    const auto bits = comm_.all_gather(static_cast<std::uint64_t>(shard_.bits()));
    std::string problem;
    for (int r = 0; r < comm_.size(); ++r)
      if (bits[static_cast<std::size_t>(r)] != bits[0] && problem.empty())
        problem = nmhash::detail::concat("sharded_index: the shard of rank ", r, " holds K = ",
                                         bits[static_cast<std::size_t>(r)], " bits but that of rank 0 holds K = ",
                                         bits[0]);
    if (comm_.rank() != 0) problem.clear();
    agree(comm_, problem);
  }

  // The root's index cut into consecutive shards, one per rank (collective).
  static sharded_index scatter(communicator comm, const binary_index& whole, int root = 0) {
    binary_index part = mpi::scatter(comm, whole, root);
    return sharded_index(std::move(comm), std::move(part));
  }

  const communicator& comm() const { return comm_; }
  const binary_index& shard() const { return shard_; }
  binary_index& shard() { return shard_; }
  std::size_t bits() const { return shard_.bits(); }

  // Codes over every shard (collective).
  std::size_t size() const { return static_cast<std::size_t>(comm_.all_reduce<std::uint64_t>(shard_.size(), MPI_SUM)); }

  // The position of this shard's first code in the database (collective).
  std::size_t offset() const { return layout().offset; }

  // Top-k over every shard (collective; see the header comment).
  knn_result search(const packed_codes& queries, std::size_t k, const scan_options& opt = {}, int root = 0) const {
    return search_with(queries, k, root,
                       [&](const packed_codes& q, std::size_t kk) { return shard_.search(q, kk, opt); });
  }

  // Top-k with a local search of one's own (e.g. a mih_index over the
  // shard): local(queries, k) must return what shard().search(queries, k)
  // returns.
  template <class Local>
  knn_result search_with(const packed_codes& queries, std::size_t k, int root, Local&& local) const {
    const shard_layout lay = layout();
    packed_codes q = queries;
    broadcast(comm_, q, root);
    std::string problem;
    if (q.bits() != shard_.bits())
      problem = nmhash::detail::concat("sharded_index::search: the queries have K = ", q.bits(),
                                       " bits but the index holds K = ", shard_.bits());
    else if (k == 0)
      problem = "sharded_index::search: k must be at least 1";
    else if (k > static_cast<std::size_t>(INT_MAX) / static_cast<std::size_t>(comm_.size()))
      problem = nmhash::detail::concat("sharded_index::search: k = ", k, " on ", comm_.size(),
                                       " ranks exceeds what one MPI gather takes");
    agree(comm_, comm_.rank() == root ? problem : std::string());
    const std::size_t nq = q.size(), P = static_cast<std::size_t>(comm_.size());
    // Blocks of queries small enough for one gather and bounded memory.
    const std::size_t per_query = k * P;
    const std::size_t block = std::max<std::size_t>(1, std::min<std::size_t>(nq, (std::size_t{1} << 24) / per_query));
    knn_result out;
    if (comm_.rank() == root) {
      out.queries = nq;
      out.k = k;
      out.distances.assign(nq * k, std::numeric_limits<std::int32_t>::max());
      out.indices.assign(nq * k, -1);
    }
    for (std::size_t q0 = 0; q0 < nq; q0 += block) {
      const std::size_t q1 = std::min(nq, q0 + block);
      packed_codes part(q1 - q0, q.bits());
      std::memcpy(part.data(), q.row(q0), (q1 - q0) * q.words_per_code() * sizeof(std::uint64_t));
      knn_result r = local(part, k);
      to_global(r.indices, lay);
      std::vector<std::size_t> counts;
      const std::vector<std::int32_t> dist = comm_.gather(r.distances, root, &counts);
      const std::vector<std::int64_t> ids = comm_.gather(r.indices, root);
      if (comm_.rank() != root) continue;
      // Per query, a merge of P sorted lists; ties go to the lower rank,
      // which holds the earlier positions.
      const std::size_t nb = q1 - q0;
      std::vector<std::size_t> base(P), at(P);
      for (std::size_t s = 1; s < P; ++s) base[s] = base[s - 1] + counts[s - 1];
      for (std::size_t i = 0; i < nb; ++i) {
        for (std::size_t s = 0; s < P; ++s) at[s] = base[s] + i * k;
        std::vector<std::size_t> taken(P, 0);
        for (std::size_t j = 0; j < k; ++j) {
          std::size_t best = P;
          for (std::size_t s = 0; s < P; ++s) {
            if (taken[s] == k) continue;
            if (best == P || dist[at[s] + taken[s]] < dist[at[best] + taken[best]]) best = s;
          }
          const std::size_t src = at[best] + taken[best]++;
          out.distances[(q0 + i) * k + j] = dist[src];
          out.indices[(q0 + i) * k + j] = ids[src];
        }
      }
    }
    return out;
  }

  // Filtered search (filter.hpp), collective: the top-k among the codes
  // the filter admits over every shard, exactly one index's filtered
  // search over the same codes. Ids are the database's (stored ids, or
  // positions over every shard). The root's allow-list, deny-list and
  // bitmap (one entry per code of the database) are broadcast; a
  // predicate is called on each rank with database positions, so every
  // rank passes the same one.
  knn_result search(const packed_codes& queries, std::size_t k, const search_filter& filter,
                    const scan_options& opt = {}, int root = 0) const {
    const prepared_filter local = prepare(filter, root);
    return search_with(queries, k, root,
                       [&](const packed_codes& q, std::size_t kk) { return shard_.search(q, kk, local, opt); });
  }
  range_result range_search(const packed_codes& queries, int radius, const search_filter& filter,
                            const scan_options& opt = {}, int root = 0) const {
    const prepared_filter local = prepare(filter, root);
    return range_with(queries, radius, root, [&](const packed_codes& q, int r) {
      return shard_.range_search(q, r, local, opt);
    });
  }

  // The filter for this rank's shard (collective; see search above). Keep
  // it for searches with search_with and a local filtered search.
  prepared_filter prepare(const search_filter& filter, int root = 0) const {
    const shard_layout lay = layout();
    std::int32_t flags = comm_.rank() == root ? (filter.allow ? 1 : 0) : 0;
    comm_.broadcast(flags, root);
    std::vector<std::int64_t> allow = comm_.rank() == root && filter.allow ? *filter.allow : std::vector<std::int64_t>{};
    std::vector<std::int64_t> deny = comm_.rank() == root ? filter.deny : std::vector<std::int64_t>{};
    std::vector<std::uint8_t> bits;
    if (comm_.rank() == root) bits.assign(filter.positions.begin(), filter.positions.end());
    comm_.broadcast(allow, root);
    comm_.broadcast(deny, root);
    comm_.broadcast(bits, root);
    const std::uint64_t total = comm_.all_reduce<std::uint64_t>(shard_.size(), MPI_SUM);
    const auto predicates = comm_.all_gather(static_cast<std::int32_t>(filter.predicate ? 1 : 0));
    std::string problem;
    if (!bits.empty() && bits.size() != total)
      problem = nmhash::detail::concat("sharded_index filter: the bitmap has ", bits.size(), " entries, the database ",
                                       total, " codes");
    for (int r = 0; r < comm_.size() && problem.empty(); ++r)
      if (predicates[static_cast<std::size_t>(r)] != predicates[0])
        problem = nmhash::detail::concat("sharded_index filter: rank ", r, predicates[static_cast<std::size_t>(r)] ? " passes" : " does not pass",
                                         " a predicate but rank 0 ", predicates[0] ? "does" : "does not");
    agree(comm_, comm_.rank() == root ? problem : std::string());
    const std::size_t n = shard_.size(), off = lay.offset;
    // Positions of the database to the shard's (others dropped).
    const auto local_ids = [&](const std::vector<std::int64_t>& ids) {
      if (shard_.has_ids()) return ids;
      std::vector<std::int64_t> out;
      for (const auto id : ids)
        if (id >= static_cast<std::int64_t>(off) && static_cast<std::uint64_t>(id) < off + n)
          out.push_back(id - static_cast<std::int64_t>(off));
      return out;
    };
    search_filter local;
    if (flags) local.allow = local_ids(allow);
    local.deny = local_ids(deny);
    if (!bits.empty()) local.positions.assign(bits.begin() + static_cast<std::ptrdiff_t>(off),
                                              bits.begin() + static_cast<std::ptrdiff_t>(off + n));
    if (filter.predicate) local.predicate = [&filter, off](std::size_t j) { return filter.predicate(j + off); };
    return shard_.prepare(local);
  }

  // Every code at distance < radius over every shard, in database order
  // (collective; complete on the root).
  range_result range_search(const packed_codes& queries, int radius, const scan_options& opt = {},
                            int root = 0) const {
    return range_with(queries, radius, root,
                      [&](const packed_codes& q, int r) { return shard_.range_search(q, r, opt); });
  }

  // Range search with a local search of one's own: local(queries, radius)
  // must return what shard().range_search(queries, radius) returns.
  template <class Local>
  range_result range_with(const packed_codes& queries, int radius, int root, Local&& local) const {
    const shard_layout lay = layout();
    packed_codes q = queries;
    broadcast(comm_, q, root);
    comm_.broadcast(radius, root);
    agree(comm_, comm_.rank() == root && q.bits() != shard_.bits()
                     ? nmhash::detail::concat("sharded_index::range_search: the queries have K = ", q.bits(),
                                              " bits but the index holds K = ", shard_.bits())
                     : std::string());
    range_result r = local(q, radius);
    to_global(r.labels, lay);
    const std::size_t nq = q.size(), P = static_cast<std::size_t>(comm_.size());
    std::vector<std::uint64_t> lims(r.lims.begin(), r.lims.end());
    const std::vector<std::uint64_t> all_lims = comm_.gather(lims, root);
    std::vector<std::size_t> counts;
    const std::vector<std::int32_t> dist = comm_.gather(r.distances, root, &counts);
    const std::vector<std::int64_t> ids = comm_.gather(r.labels, root);
    range_result out;
    if (comm_.rank() != root) return out;
    out.queries = nq;
    out.lims.assign(nq + 1, 0);
    std::vector<std::size_t> base(P, 0);
    for (std::size_t s = 1; s < P; ++s) base[s] = base[s - 1] + counts[s - 1];
    for (std::size_t i = 0; i < nq; ++i) {
      for (std::size_t s = 0; s < P; ++s) {
        const std::uint64_t* l = all_lims.data() + s * (nq + 1);
        for (std::uint64_t e = l[i]; e < l[i + 1]; ++e) {
          out.distances.push_back(dist[base[s] + e]);
          out.labels.push_back(ids[base[s] + e]);
        }
      }
      out.lims[i + 1] = out.distances.size();
    }
    return out;
  }

 private:
  struct shard_layout {
    std::size_t offset = 0;
    bool ids = false;
  };

  // Offsets of the shards and the kind of ids they hold (collective).
  shard_layout layout() const {
    const auto sizes = comm_.all_gather(static_cast<std::uint64_t>(shard_.size()));
    const auto kinds = comm_.all_gather(static_cast<std::int32_t>(shard_.empty() ? -1 : shard_.has_ids() ? 1 : 0));
    shard_layout lay;
    std::int32_t kind = -1;
    std::string problem;
    for (int r = 0; r < comm_.size(); ++r) {
      const auto s = static_cast<std::size_t>(r);
      if (r < comm_.rank()) lay.offset += static_cast<std::size_t>(sizes[s]);
      if (kinds[s] < 0) continue;
      if (kind < 0) kind = kinds[s];
      if (kinds[s] != kind && problem.empty())
        problem = nmhash::detail::concat("sharded_index: the shard of rank ", r,
                                         kinds[s] ? " holds ids of its own" : " numbers its codes by position",
                                         " but an earlier shard ",
                                         kinds[s] ? "numbers its codes by position" : "holds ids of its own");
    }
    agree(comm_, comm_.rank() == 0 ? problem : std::string());
    lay.ids = kind == 1;
    return lay;
  }

  // The shard's ids (as its own search gives them) to the database's:
  // positions become global positions; stored ids stay.
  void to_global(std::vector<std::int64_t>& v, const shard_layout& lay) const {
    if (shard_.has_ids()) return;
    for (auto& x : v)
      if (x >= 0) x += static_cast<std::int64_t>(lay.offset);
  }

  communicator comm_;
  binary_index shard_;
};

}  // namespace nmhash::mpi
