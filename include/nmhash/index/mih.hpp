// Exact sub-linear Hamming search: multi-index hashing (Norouzi, Punjani &
// Fleet, "Fast Exact Search in Hamming Space with Multi-Index Hashing",
// CVPR 2012 / TPAMI 2014) over the codes of a binary_index.
//
// The K bits are cut into m disjoint substrings of about K / m bits, and
// each substring gets a table from its value to the codes that hold it. A
// code at distance d from the query has, by the pigeonhole principle, some
// substring within floor(d / m) of the query's. k-NN search probes the
// tables at growing radius rho, substring after substring: after substring
// a (0-based) has been probed at radius rho, and the others up to rho
// (before a) or rho - 1 (after a), every code at distance <= m * rho + a
// has been found. The search stops when k of the codes found lie within
// that bound, then orders them by (distance, position): the same result as
// the flat scan, FAISS's order.
//
// A table keeps, bucket after bucket, each code's position and a copy of
// the code itself, so a probe reads its bucket sequentially and never
// touches the index (memory: m x n x (8 ceil(K / 64) + 4) bytes, plus the
// bucket offsets). A code is taken only at the first probe that reaches
// it, decided from its substring distances (no per-query set of seen
// codes), and only while its distance can still enter the top k.
//
// Bucket offsets are a direct array when the substring has at most 22 bits
// (16 MiB), else sorted keys searched by bisection. Positions are 32-bit.
// When a query's estimated cost (a probe counts as 48 codes of the flat
// scan, 192 with bisection; a code read from a bucket as 2) would reach
// scan_above x n, the query is answered by the flat scan instead: uniform
// codes with long substrings, the method's worst case.
#pragma once

#include <algorithm>
#include <exception>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/cpu.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/byte_scan.hpp"

namespace nmhash {

namespace detail {
inline void prefetch_read(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 0);
#else
  (void)p;
#endif
}
}  // namespace detail

class mih_index {
 public:
  // Tables over the codes `idx` holds now. `substrings` = 0 chooses
  // m = max(ceil(K / 32), round(K / log2(n))). The multi-index refers to
  // `idx` (it must outlive this object) and to its size at construction:
  // after a write to `idx` a search throws until the tables are rebuilt.
  // A query switches to the flat scan once its estimated cost would reach
  // scan_above x the flat scan's (infinity: never).
  explicit mih_index(const binary_index& idx, std::size_t substrings = 0, double scan_above = 0.5)
      : idx_(&idx), n_(idx.size()), words_(words_for_bits(idx.bits())) {
    require(scan_above > 0, "mih_index: scan_above must be positive, got ", scan_above);
    const double budget = scan_above * static_cast<double>(n_);
    budget_ = budget >= static_cast<double>(std::numeric_limits<std::size_t>::max())
                  ? std::numeric_limits<std::size_t>::max()
                  : static_cast<std::size_t>(budget);
    const std::size_t K = idx.bits();
    require(K >= 2, "mih_index: multi-index hashing needs K >= 2 bits, the index has K = ", K);
    require(n_ <= std::numeric_limits<std::uint32_t>::max(), "mih_index: ", n_,
            " codes exceed the 32-bit positions of the tables");
    std::size_t m = substrings;
    if (m == 0) {
      const double l = std::log2(static_cast<double>(std::max<std::size_t>(n_, 2)));
      m = std::max<std::size_t>((K + 31) / 32, static_cast<std::size_t>(std::lround(static_cast<double>(K) / l)));
      m = std::clamp<std::size_t>(m, 1, K);
    }
    require(m >= 1 && m <= K, "mih_index: substrings must be in [1, K = ", K, "], got ", m);
    require((K + m - 1) / m <= 32, "mih_index: substrings of ", (K + m - 1) / m, " bits exceed 32; use at least ",
            (K + 31) / 32, " substrings for K = ", K);
    checked_mul(checked_mul(n_, words_, "mih_index: table codes"), m * sizeof(std::uint64_t),
                "mih_index: table bytes");
    // Substring a covers bits [begin_a, begin_a + len_a); the first K % m
    // substrings take one bit more.
    std::size_t at = 0;
    tables_.resize(m);
    try {
      for (std::size_t a = 0; a < m; ++a) {
        table& t = tables_[a];
        t.begin = at;
        t.len = K / m + (a < K % m ? 1 : 0);
        at += t.len;
        build(t);
      }
    } catch (const std::bad_alloc&) {
      detail::fail("mih_index: cannot allocate ", m, " tables over ", n_, " codes (", m * n_ * (8 * words_ + 4),
                   " bytes)");
    }
  }

  std::size_t substrings() const { return tables_.size(); }
  std::size_t substring_bits(std::size_t a) const { return tables_.at(a).len; }
  // Bytes held by the tables.
  std::size_t memory_bytes() const {
    std::size_t b = 0;
    for (const table& t : tables_)
      b += 4 * (t.offsets.size() + t.keys.size() + t.starts.size() + t.positions.size()) + 8 * t.codes.size();
    return b;
  }

  // The k nearest codes of every query: exactly binary_index::search's
  // result (distance, then position; ids; FAISS's padding).
  knn_result search(const packed_codes& queries, std::size_t k, threads t = {}) const {
    return knn(queries, k, t, nullptr);
  }

  // Top-k among the codes a filter admits (filter.hpp): exactly
  // binary_index::search's filtered result. Inadmissible codes met in a
  // bucket are dropped before their distance is computed; a query whose
  // probes would cost more than scanning the admitted codes scans those.
  knn_result search(const packed_codes& queries, std::size_t k, const search_filter& filter, threads t = {}) const {
    check_fresh();
    return search(queries, k, idx_->prepare(filter), t);
  }
  knn_result search(const packed_codes& queries, std::size_t k, const prepared_filter& filter, threads t = {}) const {
    check_fresh();
    filter.check_size(n_, "mih search");
    return knn(queries, k, t, filter.all() ? nullptr : &filter);
  }

  // Every code at distance < radius (strict, as FAISS) in position order:
  // exactly binary_index::range_search's result.
  range_result range_search(const packed_codes& queries, int radius, threads t = {}) const {
    return range(queries, radius, t, nullptr);
  }

  // Range search among the codes a filter admits.
  range_result range_search(const packed_codes& queries, int radius, const search_filter& filter,
                            threads t = {}) const {
    check_fresh();
    return range_search(queries, radius, idx_->prepare(filter), t);
  }
  range_result range_search(const packed_codes& queries, int radius, const prepared_filter& filter,
                            threads t = {}) const {
    check_fresh();
    filter.check_size(n_, "mih range_search");
    return range(queries, radius, t, filter.all() ? nullptr : &filter);
  }

 private:
  // The top-k of every query among the codes `filter` admits (null: all).
  knn_result knn(const packed_codes& queries, std::size_t k, threads t, const prepared_filter* filter) const {
    check_fresh();
    require(queries.bits() == idx_->bits(), "mih search: the queries have K = ", queries.bits(),
            " bits but the index holds K = ", idx_->bits(), " bits");
    require(k >= 1, "mih search: k must be at least 1, got 0");
    knn_result res = detail::allocate_knn(queries.size(), k, "mih search");
    const std::size_t K = idx_->bits();
    const std::size_t need = std::min(k, filter ? filter->admitted() : n_);
    if (need == 0) return res;
    // A query that falls back scans the admitted codes: gathered once for
    // every query when they are few, else the index with the bitmap.
    const std::vector<std::uint8_t> kept = filter && filter->sparse() ? sparse_codes(*filter) : std::vector<std::uint8_t>{};
    run_queries(queries, t, filter, [&](query_state& st, std::size_t q) {
      st.start(K, need);
      if (!probe_until(st, [&](std::size_t bound) { return st.below >= need && st.cutoff <= bound; })) {
        const bool gathered = filter && filter->sparse();
        const auto one = byte_codes_knn(single(queries, q), gathered ? kept.data() : idx_->codes(),
                                        gathered ? filter->positions().size() : n_, K, k, one_thread(),
                                        filter && !gathered ? filter->bitmap() : nullptr);
        for (std::size_t r = 0; r < k; ++r) {
          res.distances[q * k + r] = one.distances[r];
          std::int64_t p = one.indices[r];
          if (p >= 0 && gathered) p = static_cast<std::int64_t>(filter->positions()[static_cast<std::size_t>(p)]);
          res.indices[q * k + r] = p < 0 || !idx_->has_ids() ? p : idx_->ids()[p];
        }
        return;
      }
      // Every code at distance <= cutoff has been found, and at least
      // `need` of them lie there.
      std::size_t r = 0;
      for (std::size_t d = 0; d <= st.cutoff && r < need; ++d) {
        auto& b = st.by_distance[d];
        const std::size_t take = std::min(b.size(), need - r);
        std::partial_sort(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(take), b.end());
        for (std::size_t j = 0; j < take; ++j, ++r) {
          res.distances[q * k + r] = static_cast<std::int32_t>(d);
          res.indices[q * k + r] = idx_->has_ids() ? idx_->ids()[b[j]] : static_cast<std::int64_t>(b[j]);
        }
      }
    });
    return res;
  }

  // The range search among the codes `filter` admits (null: all).
  range_result range(const packed_codes& queries, int radius, threads t, const prepared_filter* filter) const {
    check_fresh();
    require(queries.bits() == idx_->bits(), "mih range_search: the queries have K = ", queries.bits(),
            " bits but the index holds K = ", idx_->bits(), " bits");
    const std::size_t nq = queries.size();
    std::vector<std::vector<std::uint32_t>> pos(nq);
    std::vector<std::vector<std::int32_t>> dist(nq);
    if (radius > 0 && n_ > 0 && (!filter || filter->admitted() > 0)) {
      const std::size_t last = std::min<std::size_t>(static_cast<std::size_t>(radius) - 1, idx_->bits());
      const bool gathered = filter && filter->sparse();
      const std::vector<std::uint8_t> kept = gathered ? sparse_codes(*filter) : std::vector<std::uint8_t>{};
      run_queries(queries, t, filter, [&](query_state& st, std::size_t q) {
        st.start(last, 0);
        if (!probe_until(st, [&](std::size_t bound) { return bound >= last; })) {
          // The flat scan's positions (ids are applied below).
          const auto one = byte_codes_range(single(queries, q), gathered ? kept.data() : idx_->codes(),
                                            gathered ? filter->positions().size() : n_, idx_->bits(), radius,
                                            one_thread(), filter && !gathered ? filter->bitmap() : nullptr);
          for (std::size_t j = 0; j < one.labels.size(); ++j) {
            const auto p = static_cast<std::size_t>(one.labels[j]);
            pos[q].push_back(static_cast<std::uint32_t>(gathered ? filter->positions()[p] : p));
            dist[q].push_back(one.distances[j]);
          }
          return;
        }
        std::vector<std::pair<std::uint32_t, std::int32_t>> hits;
        for (std::size_t d = 0; d <= last; ++d)
          for (std::uint32_t p : st.by_distance[d]) hits.emplace_back(p, static_cast<std::int32_t>(d));
        std::sort(hits.begin(), hits.end());
        for (const auto& [p, d] : hits) {
          pos[q].push_back(p);
          dist[q].push_back(d);
        }
      });
    }
    range_result r;
    r.queries = nq;
    r.lims.assign(nq + 1, 0);
    for (std::size_t q = 0; q < nq; ++q) r.lims[q + 1] = r.lims[q] + pos[q].size();
    r.distances.reserve(r.lims[nq]);
    r.labels.reserve(r.lims[nq]);
    for (std::size_t q = 0; q < nq; ++q)
      for (std::size_t j = 0; j < pos[q].size(); ++j) {
        r.distances.push_back(dist[q][j]);
        r.labels.push_back(idx_->has_ids() ? idx_->ids()[pos[q][j]] : static_cast<std::int64_t>(pos[q][j]));
      }
    return r;
  }

  // The admitted codes of a sparse filter, back to back.
  std::vector<std::uint8_t> sparse_codes(const prepared_filter& filter) const {
    return detail::gather_codes(idx_->codes(), idx_->code_size(), filter.positions());
  }

  // Cost units of the switch to the flat scan, where a code of the flat
  // scan costs 1.
  static constexpr std::size_t visit_cost = 2;  // a code read from a bucket
  static constexpr std::size_t direct_probe_cost = 48;
  static constexpr std::size_t sorted_probe_cost = 192;

  struct table {
    std::size_t begin = 0, len = 0;
    bool direct = false;
    std::vector<std::uint32_t> offsets;    // direct: 2^len + 1 bucket starts
    std::vector<std::uint32_t> keys;       // sorted: distinct keys
    std::vector<std::uint32_t> starts;     // sorted: bucket starts, keys.size() + 1
    std::vector<std::uint32_t> positions;  // bucket after bucket, ascending within a bucket
    std::vector<std::uint64_t> codes;      // the codes of `positions`, words_ words each

    // Bucket `key`: entries [first, last).
    void bucket(std::uint32_t key, std::size_t& first, std::size_t& last) const {
      if (direct) {
        first = offsets[key];
        last = offsets[key + 1];
        return;
      }
      const auto it = std::lower_bound(keys.begin(), keys.end(), key);
      if (it == keys.end() || *it != key) {
        first = last = 0;
        return;
      }
      const auto i = static_cast<std::size_t>(it - keys.begin());
      first = starts[i];
      last = starts[i + 1];
    }
  };

  // Per-thread search state: the query, the found codes by distance, and
  // the k-th distance bound.
  struct query_state {
    std::vector<std::vector<std::uint32_t>> by_distance;
    std::vector<std::uint64_t> qwords, xwords;
    // One bit per position (1: admitted), or null; the probes' cost budget.
    const std::uint64_t* admit = nullptr;
    std::size_t budget = 0;
    // Codes are kept only at distance <= cutoff; `below` of them are kept.
    // With need > 0, cutoff is lowered while `need` codes lie below it.
    std::size_t cutoff = 0, below = 0, need = 0, work = 0;

    void start(std::size_t cut, std::size_t n) {
      for (auto& b : by_distance) b.clear();
      cutoff = cut;
      below = 0;
      need = n;
      work = 0;
    }
    void keep(int d, std::uint32_t p) {
      by_distance[static_cast<std::size_t>(d)].push_back(p);
      ++below;
      if (need == 0) return;
      while (cutoff > 0 && below - by_distance[cutoff].size() >= need) below -= by_distance[cutoff--].size();
    }
  };

  static packed_codes single(const packed_codes& queries, std::size_t q) {
    packed_codes one(1, queries.bits());
    std::copy(queries.row(q), queries.row(q) + queries.words_per_code(), one.row(0));
    return one;
  }
  static scan_options one_thread() {
    scan_options o;
    o.threads.count = 1;
    return o;
  }

  void check_fresh() const {
    require(idx_->size() == n_, "mih_index: the index holds ", idx_->size(), " codes, the tables were built over ",
            n_, "; rebuild the mih_index after writing to the index");
  }

  // Bits [begin, begin + len) of a code's words (len <= 32).
  static std::uint32_t substring_of_words(const std::uint64_t* w, std::size_t begin, std::size_t len) {
    const std::size_t word = begin / 64, shift = begin % 64;
    std::uint64_t v = w[word] >> shift;
    if (shift + len > 64) v |= w[word + 1] << (64 - shift);
    return static_cast<std::uint32_t>(v & ((std::uint64_t{1} << len) - 1));
  }

  void build(table& t) const {
    const std::uint8_t* codes = idx_->codes();
    const std::size_t cs = idx_->code_size(), W = words_;
    std::vector<std::uint32_t> key(n_);
    std::vector<std::uint64_t> w(W);
    for (std::size_t j = 0; j < n_; ++j) {
      std::fill(w.begin(), w.end(), std::uint64_t{0});
      std::memcpy(w.data(), codes + j * cs, cs);
      key[j] = substring_of_words(w.data(), t.begin, t.len);
    }
    t.positions.resize(n_);
    t.direct = t.len <= 22;
    if (t.direct) {
      // Counting sort by key: each bucket in ascending position.
      t.offsets.assign((std::size_t{1} << t.len) + 1, 0);
      for (std::uint32_t k : key) ++t.offsets[k + 1];
      for (std::size_t b = 1; b < t.offsets.size(); ++b) t.offsets[b] += t.offsets[b - 1];
      std::vector<std::uint32_t> fill(t.offsets.begin(), t.offsets.end() - 1);
      for (std::size_t j = 0; j < n_; ++j) t.positions[fill[key[j]]++] = static_cast<std::uint32_t>(j);
    } else {
      for (std::size_t j = 0; j < n_; ++j) t.positions[j] = static_cast<std::uint32_t>(j);
      std::stable_sort(t.positions.begin(), t.positions.end(),
                       [&](std::uint32_t a, std::uint32_t b) { return key[a] < key[b]; });
      for (std::size_t i = 0; i < n_; ++i) {
        const std::uint32_t k = key[t.positions[i]];
        if (t.keys.empty() || t.keys.back() != k) {
          t.keys.push_back(k);
          t.starts.push_back(static_cast<std::uint32_t>(i));
        }
      }
      t.starts.push_back(static_cast<std::uint32_t>(n_));
    }
    t.codes.assign(n_ * W, 0);
    for (std::size_t i = 0; i < n_; ++i)
      std::memcpy(t.codes.data() + i * W, codes + std::size_t{t.positions[i]} * cs, cs);
  }

  template <class Body>
  void run_queries(const packed_codes& queries, threads t, const prepared_filter* filter, Body&& body) const {
    const std::size_t nq = queries.size();
    const std::size_t chunk = 16;
    const std::size_t chunks = (nq + chunk - 1) / chunk;
    parallel_for(static_cast<std::int64_t>(chunks), t, 1, [&](std::int64_t c) {
      query_state st;
      st.by_distance.resize(idx_->bits() + 1);
      st.admit = filter ? filter->bitmap() : nullptr;
      st.budget = budget_;
      if (filter && filter->sparse()) {
        // The fallback scans only the admitted codes.
        const double scaled = static_cast<double>(budget_) * static_cast<double>(filter->admitted()) /
                              static_cast<double>(std::max<std::size_t>(n_, 1));
        st.budget = std::max<std::size_t>(1, static_cast<std::size_t>(scaled));
      }
      st.qwords.resize(words_);
      st.xwords.resize(words_);
      const std::size_t q0 = static_cast<std::size_t>(c) * chunk, q1 = std::min(nq, q0 + chunk);
      for (std::size_t q = q0; q < q1; ++q) {
        detail::query_words(queries, q, st.qwords.size(), st.qwords.data());
        body(st, q);
      }
    });
  }

  // Whether a code whose XOR with the query is x, reached by the probe of
  // substring a at radius rho, is reached here first: no substring before
  // a lies within rho of the query's and none after a within rho - 1.
  bool first_reached(const std::uint64_t* x, std::size_t a, std::size_t rho) const {
    for (std::size_t b = 0; b < tables_.size(); ++b) {
      if (b == a) continue;
      const auto s = static_cast<std::size_t>(popcount64(substring_of_words(x, tables_[b].begin, tables_[b].len)));
      if (b < a ? s <= rho : s < rho) return false;
    }
    return true;
  }

  // Codes [first, last) of table a, reached at radius rho: each one within
  // the cutoff and reached here first is kept.
  template <std::size_t W>
  void scan_bucket(query_state& st, const table& t, std::size_t a, std::size_t rho, std::size_t first,
                   std::size_t last) const {
    const std::size_t w = W ? W : words_;
    const std::uint64_t* q = st.qwords.data();
    const std::uint64_t* c = t.codes.data() + first * w;
    std::uint64_t* x = st.xwords.data();
    for (std::size_t i = first; i < last; ++i, c += w) {
      if (st.admit && !detail::test_bit(st.admit, t.positions[i])) continue;
      int d = 0;
      for (std::size_t j = 0; j < w; ++j) d += popcount64(q[j] ^ c[j]);
      if (NMHASH_LIKELY(static_cast<std::size_t>(d) > st.cutoff)) continue;
      if (tables_.size() > 1) {
        for (std::size_t j = 0; j < w; ++j) x[j] = q[j] ^ c[j];
        if (!first_reached(x, a, rho)) continue;
      }
      st.keep(d, t.positions[i]);
    }
  }

  // Probes the tables at growing radius until done(bound) holds, where
  // every code at distance <= bound has been found, or every code has;
  // false when the probes would cost more than a scan (nothing is decided).
  template <class Done>
  bool probe_until(query_state& st, Done&& done) const {
    const std::size_t m = tables_.size();
    const std::uint64_t* qw = st.qwords.data();
    for (std::size_t rho = 0;; ++rho) {
      for (std::size_t a = 0; a < m; ++a) {
        const table& t = tables_[a];
        if (rho > t.len) {
          // Substring a was probed at every radius: every code was found.
          done(idx_->bits());
          return true;
        }
        std::size_t cost = 0;
        if (!mul_fits(binomial(t.len, rho), t.direct ? direct_probe_cost : sorted_probe_cost, cost) ||
            !add_fits(st.work, cost, st.work) || st.work > st.budget)
          return false;
        const std::uint32_t qs = substring_of_words(qw, t.begin, t.len);
        std::size_t visited = 0;
        with_isa([&](auto) {
          // Keys in batches: the batch's bucket offsets are fetched from
          // memory together (prefetched) before any bucket is read.
          constexpr std::size_t batch = 16;
          std::uint32_t keys[batch];
          std::size_t held = 0;
          const auto flush = [&] {
            for (std::size_t i = 0; i < held; ++i) {
              std::size_t first = 0, last = 0;
              t.bucket(keys[i], first, last);
              if (first == last) continue;
              visited += last - first;
              switch (words_) {
                case 1: scan_bucket<1>(st, t, a, rho, first, last); break;
                case 2: scan_bucket<2>(st, t, a, rho, first, last); break;
                case 3: scan_bucket<3>(st, t, a, rho, first, last); break;
                case 4: scan_bucket<4>(st, t, a, rho, first, last); break;
                default: scan_bucket<0>(st, t, a, rho, first, last); break;
              }
            }
            held = 0;
          };
          for_each_at_distance(t.len, rho, [&](std::uint32_t flip) {
            keys[held] = qs ^ flip;
            if (t.direct) detail::prefetch_read(t.offsets.data() + keys[held]);
            if (++held == batch) flush();
          });
          flush();
        });
        if (!add_fits(st.work, visited * visit_cost, st.work)) st.work = std::numeric_limits<std::size_t>::max();
        const std::size_t bound = m * rho + a;
        if (bound >= idx_->bits() || done(bound)) return true;
      }
    }
  }

  // C(n, r), saturating at SIZE_MAX.
  static std::size_t binomial(std::size_t n, std::size_t r) {
    if (r > n) return 0;
    r = std::min(r, n - r);
    std::size_t c = 1;
    for (std::size_t i = 1; i <= r; ++i) {
      std::size_t next = 0;
      if (!mul_fits(c, n - r + i, next)) return std::numeric_limits<std::size_t>::max();
      c = next / i;
    }
    return c;
  }

  // Calls f(mask) for every len-bit mask with exactly r bits set.
  template <class F>
  static void for_each_at_distance(std::size_t len, std::size_t r, F&& f) {
    if (r == 0) {
      f(0u);
      return;
    }
    if (r > len) return;
    std::uint64_t v = (std::uint64_t{1} << r) - 1;
    const std::uint64_t end = std::uint64_t{1} << len;
    while (v < end) {
      f(static_cast<std::uint32_t>(v));
      const std::uint64_t c = v & (~v + 1), nr = v + c;  // Gosper's hack
      v = (((nr ^ v) >> 2) / c) | nr;
    }
  }

  const binary_index* idx_;
  std::size_t n_;
  std::size_t words_;
  std::size_t budget_ = 0;
  std::vector<table> tables_;
};

}  // namespace nmhash
