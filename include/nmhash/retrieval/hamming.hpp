// Hamming distance between packed codes: the per-pair kernel specialised by
// code width (one word, two words, any number), the width dispatch every
// ranking and metric routine goes through, and the dense Q x N distance
// matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/bits.hpp"
#include "nmhash/core/config.hpp"
#include "nmhash/core/cpu.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"

namespace nmhash {

// Width tag: W = 1 (K <= 64) and W = 2 (K <= 128) are the fast paths with
// the word count known at compile time; W = 0 loops over `words` words.
template <int W>
using code_width = std::integral_constant<int, W>;

template <int W>
NMHASH_HOST_DEVICE inline int hamming(const std::uint64_t* a, const std::uint64_t* b,
                                      std::size_t words) {
  if constexpr (W == 1) {
    (void)words;
    return popcount64(a[0] ^ b[0]);
  } else if constexpr (W == 2) {
    (void)words;
    return popcount64(a[0] ^ b[0]) + popcount64(a[1] ^ b[1]);
  } else {
    int d = 0;
    for (std::size_t w = 0; w < words; ++w) d += popcount64(a[w] ^ b[w]);
    return d;
  }
}

// Calls f(code_width<W>{}) with the fast-path width for `words` words.
template <class F>
decltype(auto) dispatch_width(std::size_t words, F&& f) {
  if (words == 1) return f(code_width<1>{});
  if (words == 2) return f(code_width<2>{});
  return f(code_width<0>{});
}

namespace detail {

inline void check_same_bits(const packed_codes& q, const packed_codes& db, const char* who) {
  require(q.bits() == db.bits(), who, ": query codes have K = ", q.bits(),
          " bits but database codes have K = ", db.bits());
}

// out[j] = hamming(q, db_j) for j in [0, n).
template <int W, class Dist>
void distances_to_block(const std::uint64_t* NMHASH_RESTRICT q,
                        const std::uint64_t* NMHASH_RESTRICT db, std::size_t n,
                        std::size_t words, Dist* NMHASH_RESTRICT out) {
  if constexpr (W == 1) {
    const std::uint64_t q0 = q[0];
    for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<Dist>(popcount64(q0 ^ db[j]));
  } else if constexpr (W == 2) {
    const std::uint64_t q0 = q[0], q1 = q[1];
    for (std::size_t j = 0; j < n; ++j)
      out[j] = static_cast<Dist>(popcount64(q0 ^ db[2 * j]) + popcount64(q1 ^ db[2 * j + 1]));
  } else {
    for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<Dist>(hamming<0>(q, db + j * words, words));
  }
}

}  // namespace detail

// Dense distance matrix, row-major Q x N, int32 (FAISS's binary distance
// type).
inline std::vector<std::int32_t> hamming_distances(const packed_codes& queries,
                                                   const packed_codes& database,
                                                   threads t = {}) {
  detail::check_same_bits(queries, database, "hamming_distances");
  const std::size_t n = database.size();
  std::vector<std::int32_t> out(queries.size() * n);
  dispatch_width(database.words_per_code(), [&](auto w) {
    constexpr int W = decltype(w)::value;
    parallel_for(static_cast<std::int64_t>(queries.size()), t, 1, [&](std::int64_t i) {
      with_isa([&](auto) {
        detail::distances_to_block<W>(queries.row(static_cast<std::size_t>(i)), database.data(), n,
                                      database.words_per_code(), out.data() + static_cast<std::size_t>(i) * n);
      });
    });
  });
  return out;
}

}  // namespace nmhash
