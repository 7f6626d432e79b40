// Exact Hamming k-nearest-neighbour search. Results per query are sorted by
// (distance, ascending database index), the order FAISS IndexBinaryFlat
// returns.
//
// Algorithm: distances are integers in [0, K], so the k-th smallest distance
// is found by counting, not by a heap. Each query keeps a threshold h* (the
// smallest distance whose cumulative count among accepted candidates reaches
// k) and accepts an item only when its distance is below h*: once k
// candidates lie at distance <= h*, a later item at distance h* ranks behind
// all of them because ties go to the smaller index. Accepted candidates sit
// in an unsorted buffer that is compacted when full; a final stable counting
// sort over the K + 1 distances orders them. The scan over the database is
// tiled (a block of database codes is swept by a tile of queries) so that
// the block stays in cache.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/device.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/core/cpu.hpp"
#include "nmhash/retrieval/hamming.hpp"
#include "nmhash/retrieval/scan_kernels.hpp"

namespace nmhash {

struct knn_result {
  std::size_t queries = 0;
  std::size_t k = 0;
  // Row-major queries x k. Where the database has fewer than k items the
  // trailing entries hold distance INT32_MAX and index -1 (FAISS's padding).
  std::vector<std::int32_t> distances;
  std::vector<std::int64_t> indices;

  std::int32_t distance(std::size_t q, std::size_t r) const { return distances[q * k + r]; }
  std::int64_t index(std::size_t q, std::size_t r) const { return indices[q * k + r]; }
};

namespace detail {
// A result of nq x k entries holding FAISS's padding; an nmhash::error
// naming `who` when the product overflows or cannot be allocated.
inline knn_result allocate_knn(std::size_t nq, std::size_t k, const char* who) {
  knn_result res;
  res.queries = nq;
  res.k = k;
  const std::size_t entries = checked_mul(nq, k, who, ": result of queries x k");
  try {
    res.distances.assign(entries, std::numeric_limits<std::int32_t>::max());
    res.indices.assign(entries, -1);
  } catch (const std::exception&) {  // std::bad_alloc or std::length_error
    fail(who, ": cannot allocate the result of ", nq, " queries x k = ", k, " (", entries, " entries of 12 bytes)");
  }
  return res;
}
}  // namespace detail

struct knn_options {
  nmhash::threads threads{};
  // Database codes per cache block swept by a tile of queries.
  std::size_t database_block = 8192;
  // Upper bound on queries per tile (lowered for large k to bound memory).
  std::size_t query_tile = 32;
};

namespace detail {

// Selection state of one query.
class topk_selector {
 public:
  // n: the number of items the query will see (bounds the buffer when k
  // exceeds it).
  topk_selector(std::size_t k, std::size_t bits, std::size_t n = static_cast<std::size_t>(-1))
      : k_(k), hstar_(static_cast<int>(bits) + 1), hist_(bits + 2, 0) {
    const std::size_t keep = std::min(k, n);
    cap_ = keep + std::max<std::size_t>(keep, 256);
    dist_.resize(cap_);
    idx_.resize(cap_);
  }

  int threshold() const { return hstar_; }

  // Precondition: d < threshold().
  void accept(int d, std::int64_t j) {
    dist_[size_] = static_cast<std::uint16_t>(d);
    idx_[size_] = j;
    ++size_;
    ++hist_[static_cast<std::size_t>(d)];
    if (++below_ >= k_) lower_threshold();
    if (size_ == cap_) compact();
  }

  // Writes the k best (distance, index) pairs sorted, padding as knn_result.
  void finish(std::int32_t* out_d, std::int64_t* out_i) {
    compact();
    std::vector<std::size_t> start(hist_.size() + 1, 0);
    for (std::size_t h = 0; h < hist_.size(); ++h) start[h + 1] = start[h] + hist_[h];
    for (std::size_t s = 0; s < size_; ++s) {
      const std::size_t pos = start[dist_[s]]++;
      out_d[pos] = dist_[s];
      out_i[pos] = idx_[s];
    }
    for (std::size_t r = size_; r < k_; ++r) {
      out_d[r] = std::numeric_limits<std::int32_t>::max();
      out_i[r] = -1;
    }
  }

 private:
  // below_ = #candidates with distance < hstar_ reached k: the new threshold
  // is the smallest h with cumulative count >= k.
  void lower_threshold() {
    int h = hstar_ - 1;
    while (h > 0 && below_ - hist_[static_cast<std::size_t>(h)] >= k_) {
      below_ -= hist_[static_cast<std::size_t>(h)];
      --h;
    }
    hstar_ = h;
    below_ -= hist_[static_cast<std::size_t>(h)];
  }

  // Keeps every candidate below the threshold and the first k - below_ at
  // the threshold (in index order); the buffer then holds at most k.
  void compact() {
    std::size_t room_at_threshold = k_ - below_;
    std::size_t out = 0;
    for (std::size_t s = 0; s < size_; ++s) {
      const int d = dist_[s];
      bool keep = d < hstar_;
      if (!keep && d == hstar_ && room_at_threshold > 0) {
        keep = true;
        --room_at_threshold;
      }
      if (keep) {
        dist_[out] = dist_[s];
        idx_[out] = idx_[s];
        ++out;
      }
    }
    size_ = out;
    if (static_cast<std::size_t>(hstar_) < hist_.size()) {
      hist_[static_cast<std::size_t>(hstar_)] = static_cast<std::uint32_t>(k_ - below_ - room_at_threshold);
      std::fill(hist_.begin() + hstar_ + 1, hist_.end(), 0u);
    }
  }

  std::size_t k_;
  int hstar_;
  std::size_t below_ = 0;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
  std::vector<std::uint32_t> hist_;
  std::vector<std::uint16_t> dist_;
  std::vector<std::int64_t> idx_;
};

// Scalar scan at level L (the vector kernels take one-word codes at
// avx2 and above).
template <int W, isa L = isa::generic>
void knn_scan_block(topk_selector& sel, const std::uint64_t* NMHASH_RESTRICT q,
                    const std::uint64_t* NMHASH_RESTRICT db, std::size_t begin, std::size_t end,
                    std::size_t words) {
  if constexpr (W == 1) {
    if (knn_scan8_vector<L>(sel, q[0], reinterpret_cast<const std::uint8_t*>(db), begin, end)) return;
  }
  int hstar = sel.threshold();
  if constexpr (W == 1) {
    // Four items per step with one combined threshold test: the common case
    // (no item below the threshold) costs one branch per four items.
    const std::uint64_t q0 = q[0];
    std::size_t j = begin;
    for (; j + 4 <= end; j += 4) {
      const int d0 = popcount64(q0 ^ db[j]), d1 = popcount64(q0 ^ db[j + 1]);
      const int d2 = popcount64(q0 ^ db[j + 2]), d3 = popcount64(q0 ^ db[j + 3]);
      if (NMHASH_UNLIKELY(std::min(std::min(d0, d1), std::min(d2, d3)) < hstar)) {
        const int d[4] = {d0, d1, d2, d3};
        for (std::size_t u = 0; u < 4; ++u)
          if (d[u] < hstar) {
            sel.accept(d[u], static_cast<std::int64_t>(j + u));
            hstar = sel.threshold();
          }
      }
    }
    for (; j < end; ++j) {
      const int d = popcount64(q0 ^ db[j]);
      if (d < hstar) {
        sel.accept(d, static_cast<std::int64_t>(j));
        hstar = sel.threshold();
      }
    }
  } else {
    for (std::size_t j = begin; j < end; ++j) {
      const int d = hamming<W>(q, db + j * words, words);
      if (NMHASH_UNLIKELY(d < hstar)) {
        sel.accept(d, static_cast<std::int64_t>(j));
        hstar = sel.threshold();
      }
    }
  }
}

}  // namespace detail

// The k nearest database codes of every query. k may exceed the database
// size (the rest is padding) and k = N gives the full ranking. Device:
// nmhash::cpu, or nmhash::cuda with <nmhash/cuda/api.cuh> (nvcc).
template <class Device = cpu>
knn_result hamming_knn(const packed_codes& queries, const packed_codes& database, std::size_t k,
                       const knn_options& opt = {}) {
  static_assert(std::is_same_v<Device, cpu>,
                "hamming_knn<nmhash::cuda> is declared in <nmhash/cuda/api.cuh>");
  detail::check_same_bits(queries, database, "hamming_knn");
  require(k >= 1, "hamming_knn: k must be at least 1");
  require(opt.database_block >= 1 && opt.query_tile >= 1,
          "hamming_knn: database_block and query_tile must be positive");
  knn_result res = detail::allocate_knn(queries.size(), k, "hamming_knn");
  const std::size_t n = database.size();
  const std::size_t words = database.words_per_code();
  // A selector buffers up to 2k candidates (10 bytes each); keep a tile's
  // buffers within ~8 MiB.
  const std::size_t tile = std::clamp<std::size_t>((std::size_t{8} << 20) / (20 * k + 1), 1,
                                                   opt.query_tile);
  const std::size_t tiles = (queries.size() + tile - 1) / tile;
  dispatch_width(words, [&](auto w) {
    constexpr int W = decltype(w)::value;
    parallel_for(static_cast<std::int64_t>(tiles), opt.threads, 1, [&](std::int64_t t) {
      const std::size_t q0 = static_cast<std::size_t>(t) * tile;
      const std::size_t q1 = std::min(queries.size(), q0 + tile);
      std::vector<detail::topk_selector> sel;
      sel.reserve(q1 - q0);
      for (std::size_t q = q0; q < q1; ++q) sel.emplace_back(k, database.bits(), n);
      with_isa([&](auto level) {
        constexpr isa L = decltype(level)::value;
        for (std::size_t b = 0; b < n; b += opt.database_block) {
          const std::size_t e = std::min(n, b + opt.database_block);
          for (std::size_t q = q0; q < q1; ++q)
            detail::knn_scan_block<W, L>(sel[q - q0], queries.row(q), database.data(), b, e, words);
        }
      });
      for (std::size_t q = q0; q < q1; ++q)
        sel[q - q0].finish(res.distances.data() + q * k, res.indices.data() + q * k);
    });
  });
  return res;
}

inline knn_result hamming_knn(const packed_codes& queries, const packed_codes& database,
                              std::size_t k, threads t) {
  knn_options opt;
  opt.threads = t;
  return hamming_knn<cpu>(queries, database, k, opt);
}

}  // namespace nmhash
