// Per-query distance-relevance histograms, the common first pass of every
// metric: one sweep over the database computes each item's Hamming
// distance and relevance, counts them into counts[2 h + r], and optionally
// records (h << 1 | r) per item for the index-order pass.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nmhash/core/config.hpp"
#include "nmhash/retrieval/hamming.hpp"

namespace nmhash::detail {

// counts must hold 2 (K + 1) zeroed entries. tags, when non-null, receives
// n entries.
template <int W, class Rel>
void distance_relevance_histogram(const std::uint64_t* NMHASH_RESTRICT q,
                                  const std::uint64_t* NMHASH_RESTRICT db, std::size_t n,
                                  std::size_t words, const Rel& rel,
                                  std::uint32_t* NMHASH_RESTRICT counts,
                                  std::uint16_t* NMHASH_RESTRICT tags) {
  if (tags) {
    for (std::size_t j = 0; j < n; ++j) {
      const unsigned t = static_cast<unsigned>(hamming<W>(q, db + j * words, words)) << 1 |
                         static_cast<unsigned>(rel(j));
      ++counts[t];
      tags[j] = static_cast<std::uint16_t>(t);
    }
  } else {
    for (std::size_t j = 0; j < n; ++j) {
      const unsigned t = static_cast<unsigned>(hamming<W>(q, db + j * words, words)) << 1 |
                         static_cast<unsigned>(rel(j));
      ++counts[t];
    }
  }
}

}  // namespace nmhash::detail
