// Brute-force filtered search for the filter tests: the admitted codes by
// the filter's definition (no bitmaps), then every distance sorted by
// (distance, position).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "nmhash/index/filter.hpp"
#include "nmhash/retrieval/topk.hpp"
#include "reference.hpp"

namespace ref {

// Position j is admitted when every condition of f holds for it; ids[j] is
// the id the index gives position j.
inline std::vector<bool> admitted_by(const nmhash::search_filter& f, const std::vector<std::int64_t>& ids) {
  std::vector<bool> out(ids.size());
  for (std::size_t j = 0; j < ids.size(); ++j) {
    bool a = true;
    if (f.allow) a = std::find(f.allow->begin(), f.allow->end(), ids[j]) != f.allow->end();
    if (std::find(f.deny.begin(), f.deny.end(), ids[j]) != f.deny.end()) a = false;
    if (!f.positions.empty() && !f.positions[j]) a = false;
    if (f.predicate && !f.predicate(j)) a = false;
    out[j] = a;
  }
  return out;
}

// The k nearest admitted codes of each query: (distance, position) order,
// ids, FAISS's padding.
inline void filtered_knn(const bits_t& qb, const bits_t& db, const std::vector<std::int64_t>& ids,
                         const std::vector<bool>& admitted, std::size_t k, std::vector<std::int32_t>& dist,
                         std::vector<std::int64_t>& out_ids) {
  dist.assign(qb.size() * k, std::numeric_limits<std::int32_t>::max());
  out_ids.assign(qb.size() * k, -1);
  for (std::size_t i = 0; i < qb.size(); ++i) {
    std::vector<std::pair<int, std::size_t>> all;
    for (std::size_t j = 0; j < db.size(); ++j)
      if (admitted[j]) all.emplace_back(distance(qb[i], db[j]), j);
    std::sort(all.begin(), all.end());
    for (std::size_t r = 0; r < k && r < all.size(); ++r) {
      dist[i * k + r] = all[r].first;
      out_ids[i * k + r] = ids[all[r].second];
    }
  }
}

// Every admitted code at distance < radius, in position order, per query.
inline void filtered_range(const bits_t& qb, const bits_t& db, const std::vector<std::int64_t>& ids,
                           const std::vector<bool>& admitted, int radius, std::vector<std::size_t>& lims,
                           std::vector<std::int32_t>& dist, std::vector<std::int64_t>& out_ids) {
  lims.assign(1, 0);
  dist.clear();
  out_ids.clear();
  for (std::size_t i = 0; i < qb.size(); ++i) {
    for (std::size_t j = 0; j < db.size(); ++j) {
      const int d = distance(qb[i], db[j]);
      if (admitted[j] && d < radius) {
        dist.push_back(d);
        out_ids.push_back(ids[j]);
      }
    }
    lims.push_back(dist.size());
  }
}

}  // namespace ref
