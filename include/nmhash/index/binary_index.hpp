// nmhash::binary_index: a database of K-bit codes with 64-bit ids for an
// engine to hold: add, add_with_ids, remove_ids, exact top-k search (FAISS
// order and padding) and range search. Codes are stored at ceil(K / 8)
// bytes each, back to back, FAISS's binary layout (byte_scan.hpp).
//
// Ids. An index either numbers its codes by position, as FAISS's
// IndexBinaryFlat (add(); removing codes renumbers those behind them), or
// holds an id per code, as IndexBinaryIDMap (add_with_ids(); ids are kept
// through removals; duplicates are allowed, and remove_ids removes every
// code with a listed id). The first add of an empty index decides, and
// mixing the two is an error.
//
// Threads. Like a standard container: any number of threads may call the
// const members (search, range_search, accessors) at once, provided no
// thread is inside a non-const member (add, add_with_ids, remove_ids,
// reserve, clear) of the same index; a writer needs exclusive access, e.g.
// a std::shared_mutex held shared by searches and exclusively by writers.
//
// Read-only indexes. io::map_index (index_io.hpp) returns an index that
// views a memory-mapped file; its non-const members throw.
//
// Filtered search (filter.hpp): search and range_search with a
// search_filter, or with a prepared_filter from prepare(), return exactly
// the unfiltered result over the admitted codes alone.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/index/byte_scan.hpp"
#include "nmhash/index/filter.hpp"
#include "nmhash/retrieval/topk.hpp"

namespace nmhash {

namespace detail {
// Codes in the byte layout (ceil(bits / 8) bytes each) must hold no bit at
// positions >= bits; `who` names the caller (or file) in the error.
template <class Who>
void check_code_padding(const std::uint8_t* codes, std::size_t n, std::size_t bits, const Who& who) {
  if (bits % 8 == 0) return;
  const std::size_t cs = (bits + 7) / 8;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (bits % 8));
  for (std::size_t i = 0; i < n; ++i)
    if ((codes[i * cs + cs - 1] & mask) != 0) fail(who, ": code ", i, " has bits set at positions >= K = ", bits);
}

// An index either numbers its codes by position or holds ids of its own;
// its first add decides (an empty index takes either). `hint` says what to
// do instead when codes without ids reach an index with ids.
inline void check_id_kind(bool index_has_ids, bool index_empty, bool adding_ids, const char* who, const char* hint) {
  if (index_empty) return;
  if (adding_ids && !index_has_ids)
    fail(who, ": this index numbers its codes by position (add); ids cannot be added to it");
  if (!adding_ids && index_has_ids) fail(who, ": this index holds ids of its own; ", hint);
}
}  // namespace detail

class binary_index {
 public:
  // An empty index of K-bit codes, 1 <= K <= max_code_bits.
  explicit binary_index(std::size_t bits) : bits_(bits), cs_((bits + 7) / 8) {
    require(bits >= 1 && bits <= max_code_bits, "binary_index: code length K = ", bits, " is outside [1, ",
            max_code_bits, "]");
  }

  // A read-only index over n codes at `codes` (code_size() bytes each) and,
  // when `ids` is not null, their ids; `keep` owns the memory (e.g. a
  // mapping). The codes are not copied.
  static binary_index view(std::size_t bits, const std::uint8_t* codes, std::size_t n, const std::int64_t* ids,
                           std::shared_ptr<const void> keep) {
    binary_index idx(bits);
    idx.view_codes_ = codes;
    idx.view_ids_ = ids;
    idx.view_n_ = n;
    idx.explicit_ids_ = ids != nullptr;
    idx.keep_ = std::move(keep);
    idx.read_only_ = true;
    return idx;
  }

  std::size_t bits() const { return bits_; }
  // Bytes per stored code: ceil(K / 8).
  std::size_t code_size() const { return cs_; }
  std::size_t size() const { return read_only_ ? view_n_ : codes_.size() / cs_; }
  bool empty() const { return size() == 0; }
  // True when the codes carry ids of their own (add_with_ids).
  bool has_ids() const { return explicit_ids_; }
  bool read_only() const { return read_only_; }

  // size() * code_size() bytes.
  const std::uint8_t* codes() const { return read_only_ ? view_codes_ : codes_.data(); }
  // size() ids, or null when codes are numbered by position.
  const std::int64_t* ids() const {
    if (!explicit_ids_) return nullptr;
    return read_only_ ? view_ids_ : ids_.data();
  }
  // The id of the code at `position`.
  std::int64_t id(std::size_t position) const {
    require(position < size(), "binary_index: position ", position, " is out of range for ", size(), " codes");
    return explicit_ids_ ? ids()[position] : static_cast<std::int64_t>(position);
  }

  // Appends codes numbered by position (size() onwards).
  void add(const packed_codes& codes) {
    check_writable("add");
    id_positions_.reset();
    check_bits(codes, "add");
    detail::check_id_kind(explicit_ids_, empty(), false, "binary_index::add", "use add_with_ids");
    explicit_ids_ = false;
    append(codes);
  }

  // Appends codes with the given ids (ids.size() == codes.size()).
  void add_with_ids(const packed_codes& codes, const std::vector<std::int64_t>& ids) {
    add_with_ids(codes, ids.data(), ids.size());
  }
  void add_with_ids(const packed_codes& codes, const std::int64_t* ids, std::size_t count) {
    check_writable("add_with_ids");
    id_positions_.reset();
    check_bits(codes, "add_with_ids");
    require(count == codes.size(), "binary_index::add_with_ids: ", codes.size(), " codes but ", count, " ids");
    detail::check_id_kind(explicit_ids_, empty(), true, "binary_index::add_with_ids", "");
    append(codes);
    explicit_ids_ = true;
    ids_.insert(ids_.end(), ids, ids + count);
  }

  // Appends n codes already in the byte layout (code_size() bytes each,
  // bits >= K zero), with ids when `ids` is not null.
  void add_bytes(const std::uint8_t* bytes, std::size_t n, const std::int64_t* ids = nullptr) {
    check_writable("add_bytes");
    id_positions_.reset();
    const std::size_t total = checked_mul(n, cs_, "binary_index::add_bytes: codes x code size");
    detail::check_code_padding(bytes, n, bits_, "binary_index::add_bytes");
    detail::check_id_kind(explicit_ids_, empty(), ids != nullptr, "binary_index::add_bytes", "pass them");
    explicit_ids_ = ids != nullptr;
    if (ids) ids_.insert(ids_.end(), ids, ids + n);
    codes_.insert(codes_.end(), bytes, bytes + total);
  }

  // Removes every code whose id is listed; returns how many were removed.
  // The remaining codes keep their order.
  std::size_t remove_ids(const std::vector<std::int64_t>& ids) {
    check_writable("remove_ids");
    id_positions_.reset();
    const std::unordered_set<std::int64_t> drop(ids.begin(), ids.end());
    const std::size_t n = size();
    std::size_t out = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const std::int64_t id = explicit_ids_ ? ids_[j] : static_cast<std::int64_t>(j);
      if (drop.count(id)) continue;
      if (out != j) {
        std::memmove(codes_.data() + out * cs_, codes_.data() + j * cs_, cs_);
        if (explicit_ids_) ids_[out] = ids_[j];
      }
      ++out;
    }
    codes_.resize(out * cs_);
    if (explicit_ids_) ids_.resize(out);
    return n - out;
  }

  void reserve(std::size_t n) {
    check_writable("reserve");
    codes_.reserve(checked_mul(n, cs_, "binary_index::reserve: codes x code size"));
    if (explicit_ids_) ids_.reserve(n);
  }

  // Removes every code; the index may then take either kind of add again.
  void clear() {
    check_writable("clear");
    id_positions_.reset();
    codes_.clear();
    ids_.clear();
    explicit_ids_ = false;
  }

  // Codes [begin, begin + n) as packed codes.
  packed_codes reconstruct(std::size_t begin, std::size_t n) const {
    require(begin <= size() && n <= size() - begin, "binary_index::reconstruct: codes [", begin, ", ", begin,
            " + ", n, ") are out of range for ", size(), " codes");
    packed_codes out(n, bits_);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(out.row(i), codes() + (begin + i) * cs_, cs_);
    return out;
  }
  packed_codes reconstruct_all() const { return reconstruct(0, size()); }

  // The k nearest codes of every query, sorted by (distance, position) with
  // FAISS's padding (distance INT32_MAX, id -1) past size(); indices hold
  // the codes' ids.
  knn_result search(const packed_codes& queries, std::size_t k, const scan_options& opt = {}) const {
    knn_result r = byte_codes_knn(queries, codes(), size(), bits_, k, opt);
    to_ids(r.indices);
    return r;
  }

  // Every code at Hamming distance < radius from each query (strict, as
  // FAISS), in position order; labels hold the ids.
  range_result range_search(const packed_codes& queries, int radius, const scan_options& opt = {}) const {
    range_result r = byte_codes_range(queries, codes(), size(), bits_, radius, opt);
    to_ids(r.labels);
    return r;
  }

  // The filter resolved against this index as it is now (filter.hpp): keep
  // it for many searches while the index is unchanged.
  prepared_filter prepare(const search_filter& filter) const {
    return detail::prepare_filter(filter, size(), ids(), id_positions_, "binary_index filter");
  }

  // Top-k among the admitted codes only: exactly search() over them.
  knn_result search(const packed_codes& queries, std::size_t k, const search_filter& filter,
                    const scan_options& opt = {}) const {
    return search(queries, k, prepare(filter), opt);
  }
  knn_result search(const packed_codes& queries, std::size_t k, const prepared_filter& filter,
                    const scan_options& opt = {}) const {
    filter.check_size(size(), "binary_index::search");
    if (filter.all()) return search(queries, k, opt);
    if (!filter.sparse()) {
      knn_result r = byte_codes_knn(queries, codes(), size(), bits_, k, opt, filter.bitmap());
      to_ids(r.indices);
      return r;
    }
    const std::vector<std::uint8_t> kept = detail::gather_codes(codes(), cs_, filter.positions());
    knn_result r = byte_codes_knn(queries, kept.data(), filter.positions().size(), bits_, k, opt);
    from_gathered(r.indices, filter.positions());
    return r;
  }

  // Range search among the admitted codes only: exactly range_search()
  // over them.
  range_result range_search(const packed_codes& queries, int radius, const search_filter& filter,
                            const scan_options& opt = {}) const {
    return range_search(queries, radius, prepare(filter), opt);
  }
  range_result range_search(const packed_codes& queries, int radius, const prepared_filter& filter,
                            const scan_options& opt = {}) const {
    filter.check_size(size(), "binary_index::range_search");
    if (filter.all()) return range_search(queries, radius, opt);
    if (!filter.sparse()) {
      range_result r = byte_codes_range(queries, codes(), size(), bits_, radius, opt, filter.bitmap());
      to_ids(r.labels);
      return r;
    }
    const std::vector<std::uint8_t> kept = detail::gather_codes(codes(), cs_, filter.positions());
    range_result r = byte_codes_range(queries, kept.data(), filter.positions().size(), bits_, radius, opt);
    from_gathered(r.labels, filter.positions());
    return r;
  }

 private:
  void check_writable(const char* what) const {
    require(!read_only_, "binary_index::", what, ": the index is read-only (a view of a mapped file); load it to modify it");
  }
  void check_bits(const packed_codes& c, const char* what) const {
    require(c.bits() == bits_, "binary_index::", what, ": the codes have K = ", c.bits(),
            " bits but the index holds K = ", bits_, " bits");
  }
  // Bits >= K of the last byte must be zero (they would count as distance).
  void append(const packed_codes& c) {
    const std::size_t old = codes_.size();
    codes_.resize(checked_add(old, checked_mul(c.size(), cs_, "binary_index: codes x code size"),
                              "binary_index: stored bytes"));
    for (std::size_t i = 0; i < c.size(); ++i) std::memcpy(codes_.data() + old + i * cs_, c.row(i), cs_);
  }
  // Results over gathered codes: their rank among the gathered to the
  // position, then to the id.
  void from_gathered(std::vector<std::int64_t>& v, const std::vector<std::size_t>& positions) const {
    for (auto& x : v)
      if (x >= 0) x = static_cast<std::int64_t>(positions[static_cast<std::size_t>(x)]);
    to_ids(v);
  }
  void to_ids(std::vector<std::int64_t>& v) const {
    if (!explicit_ids_) return;
    const std::int64_t* id = ids();
    for (auto& x : v)
      if (x >= 0) x = id[x];
  }

  std::size_t bits_ = 0, cs_ = 0;
  std::vector<std::uint8_t> codes_;
  std::vector<std::int64_t> ids_;
  bool explicit_ids_ = false;
  bool read_only_ = false;
  const std::uint8_t* view_codes_ = nullptr;
  const std::int64_t* view_ids_ = nullptr;
  std::size_t view_n_ = 0;
  std::shared_ptr<const void> keep_;
  detail::id_position_cache id_positions_;
};

}  // namespace nmhash
