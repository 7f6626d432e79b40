// Per-query sweeps over the database shared by every metric: each item's
// Hamming distance h and relevance r become a tag (h << 1 | r), counted into
// the histogram counts[2 h + r] (tie-aware metrics), or additionally ranked
// in index order (index-order metrics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/core/config.hpp"
#include "nmhash/retrieval/hamming.hpp"

namespace nmhash::detail {

// counts must hold `bins` = 2 (K + 1) zeroed entries. Large sweeps count into four interleaved histograms
// so that runs of items in the same cell do not serialise on one counter.
template <int W, class Rel>
void distance_relevance_histogram(const std::uint64_t* NMHASH_RESTRICT q,
                                  const std::uint64_t* NMHASH_RESTRICT db, std::size_t n,
                                  std::size_t words, const Rel& rel,
                                  std::uint32_t* NMHASH_RESTRICT counts, std::size_t bins) {
  auto tag = [&](std::size_t j) {
    return static_cast<unsigned>(hamming<W>(q, db + j * words, words)) << 1 |
           static_cast<unsigned>(rel(j));
  };
  std::size_t j = 0;
  if (n >= 1024) {
    std::vector<std::uint32_t> sub(4 * bins, 0);
    std::uint32_t* c0 = sub.data();
    std::uint32_t* c1 = c0 + bins;
    std::uint32_t* c2 = c1 + bins;
    std::uint32_t* c3 = c2 + bins;
    for (; j + 4 <= n; j += 4) {
      const unsigned t0 = tag(j), t1 = tag(j + 1), t2 = tag(j + 2), t3 = tag(j + 3);
      ++c0[t0];
      ++c1[t1];
      ++c2[t2];
      ++c3[t3];
    }
    for (std::size_t b = 0; b < bins; ++b) counts[b] += c0[b] + c1[b] + c2[b] + c3[b];
  }
  for (; j < n; ++j) ++counts[tag(j)];
}

// The tag of item j against query q.
template <int W, class Rel>
struct item_tag {
  const std::uint64_t* q;
  const std::uint64_t* db;
  std::size_t words;
  const Rel& rel;
  unsigned operator()(std::size_t j) const {
    return static_cast<unsigned>(hamming<W>(q, db + j * words, words)) << 1 |
           static_cast<unsigned>(rel(j));
  }
};

// Ranks of the relevant items of one query when ties are broken by
// ascending index, from one pass in index order. Per distance h a cursor
// word holds (relevant items seen << 32 | items seen); each relevant item
// records the cursor after counting itself (its rank among relevant items
// and among all items inside its tie group) and its distance. finish()
// turns these into global ranks, and the final cursors are the histogram.
class index_order_ranks {
 public:
  template <class Tag>
  void scan(std::size_t n, std::size_t buckets, const Tag& tag) {
    cursor_.assign(buckets, 0);
    within_.resize(n + 1);
    dist_.resize(n + 1);
    std::uint64_t* cur = cursor_.data();
    std::uint64_t* within = within_.data();
    std::uint16_t* dist = dist_.data();
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const unsigned t = tag(j);
      const std::uint64_t r = t & 1u;
      const std::uint64_t v = cur[t >> 1] + (r << 32 | 1u);
      cur[t >> 1] = v;
      within[m] = v;
      dist[m] = static_cast<std::uint16_t>(t >> 1);
      m += r;
    }
    relevant_ = m;
  }

  // counts[2 h + r] (2 * buckets entries) from the final cursors.
  void histogram(std::uint32_t* counts) const {
    for (std::size_t h = 0; h < cursor_.size(); ++h) {
      const auto rel = static_cast<std::uint32_t>(cursor_[h] >> 32);
      counts[2 * h + 1] = rel;
      counts[2 * h] = static_cast<std::uint32_t>(cursor_[h] & 0xFFFFFFFFu) - rel;
    }
  }

  // Rewrites the recorded entries as (rank among relevant << 32 | rank),
  // both 1-based, in index order of the relevant items.
  void finish() {
    std::uint64_t before = 0;
    for (std::uint64_t& c : cursor_) {
      const std::uint64_t here = c;
      c = before;
      before += here;
    }
    for (std::size_t i = 0; i < relevant_; ++i) within_[i] += cursor_[dist_[i]];
  }

  // A database split into consecutive shards: begin(buckets), then
  // append() with each shard's scan (cursors(), ranks() before finish(),
  // distances(), relevant()) in database order, leaves the state one scan()
  // of the whole database leaves.
  void begin(std::size_t buckets) {
    cursor_.assign(buckets, 0);
    within_.clear();
    dist_.clear();
    relevant_ = 0;
  }
  void append(const std::uint64_t* cursors, const std::uint64_t* within, const std::uint16_t* dist,
              std::size_t relevant) {
    for (std::size_t i = 0; i < relevant; ++i) {
      within_.push_back(within[i] + cursor_[dist[i]]);
      dist_.push_back(dist[i]);
    }
    for (std::size_t h = 0; h < cursor_.size(); ++h) cursor_[h] += cursors[h];
    relevant_ += relevant;
  }

  std::size_t relevant() const { return relevant_; }
  std::size_t buckets() const { return cursor_.size(); }
  // After scan(): per distance, (relevant items << 32 | items).
  const std::uint64_t* cursors() const { return cursor_.data(); }
  // The distance of each relevant item, in index order.
  const std::uint16_t* distances() const { return dist_.data(); }
  const std::uint64_t* ranks() const { return within_.data(); }

 private:
  std::vector<std::uint64_t> cursor_;
  std::vector<std::uint64_t> within_;
  std::vector<std::uint16_t> dist_;
  std::size_t relevant_ = 0;
};

}  // namespace nmhash::detail
