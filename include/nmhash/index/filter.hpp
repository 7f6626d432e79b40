// Filtered search: the exact top-k (and range search) among the codes an
// engine admits, for binary_index, mih_index, gpu::binary_index and
// mpi::sharded_index.
//
// A search_filter states which codes may be returned: an allow-list of ids
// (only these), a deny-list of ids (never these), a bitmap over positions
// and a predicate over positions; the conditions given combine by AND, and
// a default-constructed filter admits every code. Ids are those the index
// returns (its own ids, or positions where it numbers codes by position);
// ids that are not in the index are ignored: an allowed id that is absent
// admits nothing, a denied one denies nothing.
//
// The result of a filtered search is exactly the unfiltered algorithm's
// over the admitted codes alone: ordered by (distance, position), ties by
// insertion order, FAISS's padding (distance INT32_MAX, id -1) where fewer
// than k codes are admitted.
//
// An index turns a filter into a prepared_filter (index.prepare(filter)),
// which an engine may keep and reuse for many searches while the index is
// unchanged. It holds a bitmap of the admitted positions and, when they are
// few (at most a sixteenth of the index), their list: such searches gather
// the admitted codes and scan only those, so their cost follows the
// admitted count; others scan every code and drop the inadmissible ones
// only among the candidates that would enter the top k, so their cost stays
// that of the unfiltered scan.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

namespace detail {

// Bitmaps of positions: bit j of word j / 64.
inline bool test_bit(const std::uint64_t* b, std::size_t j) { return (b[j / 64] >> (j % 64)) & 1u; }
inline void set_bit(std::vector<std::uint64_t>& b, std::size_t j) { b[j / 64] |= std::uint64_t{1} << (j % 64); }
inline void clear_bit(std::vector<std::uint64_t>& b, std::size_t j) { b[j / 64] &= ~(std::uint64_t{1} << (j % 64)); }

// Calls f(position) for every set bit of `words` words, ascending; each
// word is read once before its bits are visited, so f may clear them.
template <class F>
void for_each_set_bit(const std::uint64_t* b, std::size_t words, F&& f) {
  for (std::size_t w = 0; w < words; ++w)
    for (std::uint64_t x = b[w]; x; x &= x - 1) f(w * 64 + static_cast<std::size_t>(ctz64(x)));
}

// The codes (cs bytes each, back to back at `codes`) at the listed
// positions, back to back: what a sparse filter's search scans.
inline std::vector<std::uint8_t> gather_codes(const std::uint8_t* codes, std::size_t cs,
                                              const std::vector<std::size_t>& positions) {
  std::vector<std::uint8_t> out(checked_mul(positions.size(), cs, "filtered search: gathered codes"));
  for (std::size_t i = 0; i < positions.size(); ++i) std::memcpy(out.data() + i * cs, codes + positions[i] * cs, cs);
  return out;
}

}  // namespace detail

struct search_filter {
  // Only codes with these ids (absent: no allow-list).
  std::optional<std::vector<std::int64_t>> allow;
  // Never codes with these ids.
  std::vector<std::int64_t> deny;
  // Empty, or one entry per code of the index: true where admitted.
  std::vector<bool> positions;
  // Empty, or true for the positions admitted. Called once per position
  // (at most) when the filter is prepared, never during the scan.
  std::function<bool(std::size_t position)> predicate;

  static search_filter allow_ids(std::vector<std::int64_t> ids) {
    search_filter f;
    f.allow = std::move(ids);
    return f;
  }
  static search_filter deny_ids(std::vector<std::int64_t> ids) {
    search_filter f;
    f.deny = std::move(ids);
    return f;
  }
  static search_filter bitmap(std::vector<bool> admitted) {
    search_filter f;
    f.positions = std::move(admitted);
    return f;
  }
  static search_filter where(std::function<bool(std::size_t position)> admit) {
    search_filter f;
    f.predicate = std::move(admit);
    return f;
  }

  // True when nothing is filtered.
  bool admits_all() const { return !allow && deny.empty() && positions.empty() && !predicate; }
};

// A filter resolved against one index of size() codes: the admitted
// positions as a bitmap and, when few, as an ascending list.
class prepared_filter {
 public:
  prepared_filter() = default;

  // Every position of an index of n codes.
  static prepared_filter all(std::size_t n) {
    prepared_filter p;
    p.n_ = n;
    p.admitted_ = n;
    p.all_ = true;
    return p;
  }

  // From a bitmap of n bits (words of 64, bits past n zero).
  static prepared_filter from_bitmap(std::vector<std::uint64_t> bits, std::size_t n) {
    prepared_filter p;
    p.n_ = n;
    p.bits_ = std::move(bits);
    p.bits_.resize((n + 63) / 64, 0);
    std::size_t count = 0;
    for (const auto w : p.bits_) count += static_cast<std::size_t>(popcount64(w));
    p.admitted_ = count;
    if (count == n) {
      p.all_ = true;
      p.bits_.clear();
      return p;
    }
    if (count <= n / sparse_divisor) {
      p.list_.reserve(count);
      detail::for_each_set_bit(p.bits_.data(), p.bits_.size(), [&](std::size_t j) { p.list_.push_back(j); });
      p.sparse_ = true;
    }
    return p;
  }

  // Size of the index it was prepared for.
  std::size_t size() const { return n_; }
  std::size_t admitted() const { return admitted_; }
  bool all() const { return all_; }
  // True when the admitted positions are listed (positions()).
  bool sparse() const { return sparse_; }
  // The admitted positions, ascending (sparse() only).
  const std::vector<std::size_t>& positions() const { return list_; }
  // One bit per position, 1 where admitted (null when all()).
  const std::uint64_t* bitmap() const { return all_ ? nullptr : bits_.data(); }
  bool admits(std::size_t position) const {
    return position < n_ && (all_ || detail::test_bit(bits_.data(), position));
  }

  // Throws unless prepared for an index of n codes (a write since makes it
  // stale).
  void check_size(std::size_t n, const char* who) const {
    require(n == n_, who, ": the filter was prepared for ", n_, " codes, the index holds ", n,
            "; prepare it again after writing to the index");
  }

  // At most n / sparse_divisor admitted: gather and scan those alone.
  static constexpr std::size_t sparse_divisor = 16;

 private:
  std::size_t n_ = 0, admitted_ = 0;
  bool all_ = false, sparse_ = false;
  std::vector<std::uint64_t> bits_;
  std::vector<std::size_t> list_;
};

namespace detail {

// (id, position) pairs sorted by id, then position: the positions of a
// list of ids by bisection or by one merge.
using id_position_map = std::vector<std::pair<std::int64_t, std::size_t>>;

// The id -> position map of an index holding ids of its own, built at the
// first filtered search and dropped by every write. A copy of an index
// starts without one.
class id_position_cache {
 public:
  id_position_cache() = default;
  id_position_cache(const id_position_cache&) {}
  id_position_cache& operator=(const id_position_cache&) {
    reset();
    return *this;
  }
  id_position_cache(id_position_cache&&) noexcept {}
  id_position_cache& operator=(id_position_cache&&) noexcept {
    reset();
    return *this;
  }

  std::shared_ptr<const id_position_map> get(const std::int64_t* ids, std::size_t n) const {
    std::lock_guard<std::mutex> lock(m_);
    if (!map_ || map_n_ != n) {
      auto map = std::make_shared<id_position_map>(n);
      for (std::size_t j = 0; j < n; ++j) (*map)[j] = {ids[j], j};
      std::sort(map->begin(), map->end());
      map_ = std::move(map);
      map_n_ = n;
    }
    return map_;
  }
  void reset() noexcept {
    std::lock_guard<std::mutex> lock(m_);
    map_.reset();
  }

 private:
  mutable std::mutex m_;
  mutable std::shared_ptr<const id_position_map> map_;
  mutable std::size_t map_n_ = 0;
};


// Calls f(position) for every position of the listed ids present in an
// index of n codes (ids: its ids, or null where ids are positions).
template <class F>
void for_each_position_of(std::vector<std::int64_t> list, std::size_t n, const std::int64_t* ids,
                          const id_position_cache& cache, F&& f) {
  if (ids == nullptr) {
    for (const auto id : list)
      if (id >= 0 && static_cast<std::uint64_t>(id) < n) f(static_cast<std::size_t>(id));
    return;
  }
  const auto map = cache.get(ids, n);
  std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
  if (list.size() * 16 < n) {
    for (const auto id : list) {
      auto it = std::lower_bound(map->begin(), map->end(), std::make_pair(id, std::size_t{0}));
      for (; it != map->end() && it->first == id; ++it) f(it->second);
    }
    return;
  }
  std::size_t i = 0;
  for (const auto& [id, pos] : *map) {
    while (i < list.size() && list[i] < id) ++i;
    if (i == list.size()) break;
    if (list[i] == id) f(pos);
  }
}

// The filter resolved against an index of n codes with the given ids (null:
// positions). `who` names the caller in errors.
inline prepared_filter prepare_filter(const search_filter& f, std::size_t n, const std::int64_t* ids,
                                      const id_position_cache& cache, const char* who) {
  if (f.admits_all()) return prepared_filter::all(n);
  require(f.positions.empty() || f.positions.size() == n, who, ": the filter's bitmap has ", f.positions.size(),
          " entries, the index holds ", n, " codes");
  const std::size_t words = (n + 63) / 64;
  std::vector<std::uint64_t> bits(words, 0);
  if (f.allow) {
    for_each_position_of(*f.allow, n, ids, cache, [&](std::size_t j) { set_bit(bits, j); });
  } else {
    std::fill(bits.begin(), bits.end(), ~std::uint64_t{0});
    if (n % 64) bits.back() = (std::uint64_t{1} << (n % 64)) - 1;
  }
  if (!f.deny.empty()) for_each_position_of(f.deny, n, ids, cache, [&](std::size_t j) { clear_bit(bits, j); });
  if (!f.positions.empty())
    for (std::size_t j = 0; j < n; ++j)
      if (!f.positions[j]) clear_bit(bits, j);
  if (f.predicate)  // (each word is read before its bits are visited, so clearing them is safe)
    for_each_set_bit(bits.data(), words, [&](std::size_t j) {
      if (!f.predicate(j)) clear_bit(bits, j);
    });
  return prepared_filter::from_bitmap(std::move(bits), n);
}

// A top-k selector that takes only admitted positions: the scan kernels
// call accept() for candidates below the threshold, so the bitmap is read
// only for those.
template <class Selector>
struct admitted_selector {
  Selector& inner;
  const std::uint64_t* bits;
  int threshold() const { return inner.threshold(); }
  void accept(int d, std::int64_t j) {
    if (test_bit(bits, static_cast<std::size_t>(j))) inner.accept(d, j);
  }
};

}  // namespace detail
}  // namespace nmhash
