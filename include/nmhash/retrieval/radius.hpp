// Hamming radius search: every database item within distance r of each
// query, sorted by (distance, ascending index).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/retrieval/hamming.hpp"

namespace nmhash {

// Compressed rows, as faiss::RangeSearchResult: the hits of query q are
// entries [offsets[q], offsets[q + 1]) of distances and indices.
struct radius_result {
  std::vector<std::size_t> offsets;
  std::vector<std::int32_t> distances;
  std::vector<std::int64_t> indices;

  std::size_t queries() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  std::size_t count(std::size_t q) const { return offsets[q + 1] - offsets[q]; }
};

inline radius_result hamming_radius_search(const packed_codes& queries,
                                           const packed_codes& database, int radius,
                                           threads t = {}) {
  detail::check_same_bits(queries, database, "hamming_radius_search");
  require(radius >= 0, "hamming_radius_search: radius must be >= 0, got ", radius);
  const std::size_t n = database.size();
  const std::size_t words = database.words_per_code();
  const int r = std::min<int>(radius, static_cast<int>(database.bits()));
  std::vector<std::vector<std::int64_t>> hits(queries.size());
  std::vector<std::vector<std::int32_t>> dists(queries.size());
  dispatch_width(words, [&](auto w) {
    constexpr int W = decltype(w)::value;
    parallel_for(static_cast<std::int64_t>(queries.size()), t, 4, [&](std::int64_t qi) {
      const std::size_t q = static_cast<std::size_t>(qi);
      const std::uint64_t* qc = queries.row(q);
      // Stable counting sort of the hits by distance.
      std::vector<std::size_t> count(static_cast<std::size_t>(r) + 2, 0);
      std::vector<std::int64_t> found;
      std::vector<std::uint16_t> found_d;
      with_isa([&](auto) {
        for (std::size_t j = 0; j < n; ++j) {
          const int d = hamming<W>(qc, database.data() + j * words, words);
          if (d <= r) {
            found.push_back(static_cast<std::int64_t>(j));
            found_d.push_back(static_cast<std::uint16_t>(d));
            ++count[static_cast<std::size_t>(d) + 1];
          }
        }
      });
      for (std::size_t h = 1; h < count.size(); ++h) count[h] += count[h - 1];
      hits[q].resize(found.size());
      dists[q].resize(found.size());
      for (std::size_t s = 0; s < found.size(); ++s) {
        const std::size_t pos = count[found_d[s]]++;
        hits[q][pos] = found[s];
        dists[q][pos] = found_d[s];
      }
    });
  });
  radius_result res;
  res.offsets.assign(queries.size() + 1, 0);
  for (std::size_t q = 0; q < queries.size(); ++q) res.offsets[q + 1] = res.offsets[q] + hits[q].size();
  res.distances.reserve(res.offsets.back());
  res.indices.reserve(res.offsets.back());
  for (std::size_t q = 0; q < queries.size(); ++q) {
    res.indices.insert(res.indices.end(), hits[q].begin(), hits[q].end());
    res.distances.insert(res.distances.end(), dists[q].begin(), dists[q].end());
  }
  return res;
}

}  // namespace nmhash
