// Ground-truth labels for retrieval metrics and the relevance rule between a
// query and a database item: single-label class ids (relevant iff equal) or
// multi-label sets of any size stored as bitsets (relevant iff the sets
// share at least one label).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

class labels {
 public:
  enum class kind { single, multi };

  labels() = default;

  // One class id per item.
  static labels single(std::vector<std::int32_t> ids) {
    labels l;
    l.kind_ = kind::single;
    l.n_ = ids.size();
    l.ids_ = std::move(ids);
    return l;
  }

  // n x num_labels matrix of 0/1 values (multi-hot, row-major). Any other
  // value throws.
  template <class T>
  static labels multi_hot(const T* m, std::size_t n, std::size_t num_labels) {
    require(num_labels >= 1, "labels::multi_hot: a multi-hot matrix needs at least one column");
    labels l;
    l.kind_ = kind::multi;
    l.n_ = n;
    l.num_labels_ = num_labels;
    l.words_ = words_for_bits(num_labels);
    l.sets_.assign(checked_mul(n, l.words_, "labels::multi_hot: ", n, " rows of ", num_labels, " labels"), 0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < num_labels; ++c) {
        const T v = m[i * num_labels + c];
        require(v == T(0) || v == T(1), "labels::multi_hot: value at row ", i, ", column ", c,
                " is neither 0 nor 1");
        if (v == T(1)) l.sets_[i * l.words_ + c / 64] |= std::uint64_t{1} << (c % 64);
      }
    return l;
  }

  // n label sets as bitsets, words_for_bits(num_labels) words per item:
  // the layout sets() returns. Bits at or past num_labels must be zero.
  static labels multi_bitsets(std::vector<std::uint64_t> sets, std::size_t n, std::size_t num_labels) {
    require(num_labels >= 1, "labels::multi_bitsets: a label set needs at least one label column");
    labels l;
    l.kind_ = kind::multi;
    l.n_ = n;
    l.num_labels_ = num_labels;
    l.words_ = words_for_bits(num_labels);
    require(sets.size() == checked_mul(n, l.words_, "labels::multi_bitsets: ", n, " sets"),
            "labels::multi_bitsets: ", sets.size(), " words for ", n, " sets of ", l.words_, " words");
    const std::uint64_t tail = num_labels % 64 == 0 ? 0 : ~std::uint64_t{0} << (num_labels % 64);
    for (std::size_t i = 0; i < n; ++i)
      require((sets[i * l.words_ + l.words_ - 1] & tail) == 0, "labels::multi_bitsets: set ", i,
              " has labels at or past num_labels = ", num_labels);
    l.sets_ = std::move(sets);
    return l;
  }

  kind type() const { return kind_; }
  bool is_multi() const { return kind_ == kind::multi; }
  std::size_t size() const { return n_; }
  // Number of label columns (multi-label only).
  std::size_t num_labels() const { return num_labels_; }
  std::size_t words() const { return words_; }

  const std::int32_t* ids() const { return ids_.data(); }
  const std::uint64_t* sets() const { return sets_.data(); }

  // Whether item i carries label c (a class id: c == its id).
  bool has(std::size_t i, std::size_t c) const {
    if (kind_ == kind::single) return ids_[i] >= 0 && static_cast<std::size_t>(ids_[i]) == c;
    return c < num_labels_ && ((sets_[i * words_ + c / 64] >> (c % 64)) & 1u) != 0;
  }

  // Whether items i and j share a label.
  bool share(std::size_t i, std::size_t j) const {
    if (kind_ == kind::single) return ids_[i] == ids_[j];
    for (std::size_t w = 0; w < words_; ++w)
      if (sets_[i * words_ + w] & sets_[j * words_ + w]) return true;
    return false;
  }

  // The labels of items idx, in that order.
  labels subset(const std::vector<std::size_t>& idx) const {
    labels l;
    l.kind_ = kind_;
    l.n_ = idx.size();
    l.num_labels_ = num_labels_;
    l.words_ = words_;
    for (std::size_t i : idx) require(i < n_, "labels::subset: item ", i, " of ", n_);
    if (kind_ == kind::single) {
      l.ids_.reserve(idx.size());
      for (std::size_t i : idx) l.ids_.push_back(ids_[i]);
    } else {
      l.sets_.reserve(idx.size() * words_);
      for (std::size_t i : idx) l.sets_.insert(l.sets_.end(), sets_.begin() + static_cast<std::ptrdiff_t>(i * words_),
                                                 sets_.begin() + static_cast<std::ptrdiff_t>((i + 1) * words_));
    }
    return l;
  }

  // Multi-label only: the n x num_labels 0/1 matrix (row-major).
  std::vector<std::uint8_t> multi_hot_matrix() const {
    require(kind_ == kind::multi, "labels::multi_hot_matrix: the labels are class ids");
    std::vector<std::uint8_t> m(n_ * num_labels_);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t c = 0; c < num_labels_; ++c) m[i * num_labels_ + c] = has(i, c) ? 1 : 0;
    return m;
  }

 private:
  kind kind_ = kind::single;
  std::size_t n_ = 0;
  std::size_t num_labels_ = 0;
  std::size_t words_ = 0;
  std::vector<std::int32_t> ids_;
  std::vector<std::uint64_t> sets_;
};

// Relevance of database item j to one query, as function objects the metric
// kernels are instantiated with.
struct single_relevance {
  const std::int32_t* db;
  std::int32_t query;
  bool operator()(std::size_t j) const { return db[j] == query; }
};

struct multi_relevance_1 {
  const std::uint64_t* db;
  std::uint64_t query;
  bool operator()(std::size_t j) const { return (db[j] & query) != 0; }
};

struct multi_relevance {
  const std::uint64_t* db;
  const std::uint64_t* query;
  std::size_t words;
  bool operator()(std::size_t j) const {
    const std::uint64_t* d = db + j * words;
    for (std::size_t w = 0; w < words; ++w)
      if (d[w] & query[w]) return true;
    return false;
  }
};

namespace detail {

inline void check_labels(const labels& ql, std::size_t nq, const labels& dl, std::size_t nd,
                         const char* who) {
  require(ql.size() == nq, who, ": ", nq, " query codes but ", ql.size(), " query labels");
  require(dl.size() == nd, who, ": ", nd, " database codes but ", dl.size(), " database labels");
  require(ql.type() == dl.type(), who,
          ": query and database labels must both be class ids or both be multi-hot");
  require(!ql.is_multi() || ql.num_labels() == dl.num_labels(), who, ": query labels have ",
          ql.num_labels(), " columns but database labels have ", dl.num_labels());
}

}  // namespace detail

// Calls f(relevance) with the relevance object of query q.
template <class F>
decltype(auto) with_relevance(const labels& ql, const labels& dl, std::size_t q, F&& f) {
  if (!ql.is_multi()) return f(single_relevance{dl.ids(), ql.ids()[q]});
  if (ql.words() == 1) return f(multi_relevance_1{dl.sets(), ql.sets()[q]});
  return f(multi_relevance{dl.sets(), ql.sets() + q * ql.words(), ql.words()});
}

}  // namespace nmhash
