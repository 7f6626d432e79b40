// Exact sub-linear Hamming search: multi-index hashing (Norouzi, Punjani &
// Fleet, "Fast Exact Search in Hamming Space with Multi-Index Hashing",
// CVPR 2012 / TPAMI 2014) over the codes of a binary_index.
//
// The K bits are cut into m disjoint substrings of about K / m bits, and
// each substring gets a table from its value to the positions of the codes
// that hold it. A code at distance d from the query has, by the pigeonhole
// principle, some substring within floor(d / m) of the query's. k-NN search
// probes the tables at growing radius rho, substring after substring:
// after substring a (0-based) has been probed at radius rho, and the others
// up to rho (before a) or rho - 1 (after a), every code at distance
// <= m * rho + a has been found. The search stops when k of the codes found
// lie within that bound, then orders them by (distance, position): the
// same result as the flat scan, FAISS's order.
//
// A table is a direct offset array when the substring has at most 22 bits
// (16 MiB), else sorted keys searched by bisection. Positions are 32-bit.
// When the probes and found codes of a query would reach a quarter of the
// codes (uniform codes and long substrings, the method's worst case), the
// query is answered by the flat scan instead; this bounds its cost (the
// probes before the switch are random accesses: about 10 flat scans on 1M
// uniform 64-bit codes, docs/performance.md).
#pragma once

#include <algorithm>
#include <exception>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/byte_scan.hpp"

namespace nmhash {

class mih_index {
 public:
  // Tables over the codes `idx` holds now. `substrings` = 0 chooses
  // m = max(ceil(K / 32), round(K / log2(n))). The multi-index refers to
  // `idx` (it must outlive this object) and to its size at construction:
  // after a write to `idx` a search throws until the tables are rebuilt.
  // A query switches to the flat scan once its probes and found codes
  // would exceed scan_above x n (infinity: never).
  explicit mih_index(const binary_index& idx, std::size_t substrings = 0, double scan_above = 0.25)
      : idx_(&idx), n_(idx.size()) {
    require(scan_above > 0, "mih_index: scan_above must be positive, got ", scan_above);
    budget_ = scan_above * static_cast<double>(n_) >= static_cast<double>(std::numeric_limits<std::size_t>::max())
                  ? std::numeric_limits<std::size_t>::max()
                  : static_cast<std::size_t>(scan_above * static_cast<double>(n_));
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
    // Substring a covers bits [begin_a, begin_a + len_a); the first K % m
    // substrings take one bit more.
    std::size_t at = 0;
    tables_.resize(m);
    for (std::size_t a = 0; a < m; ++a) {
      table& t = tables_[a];
      t.begin = at;
      t.len = K / m + (a < K % m ? 1 : 0);
      at += t.len;
      build(t);
    }
  }

  std::size_t substrings() const { return tables_.size(); }
  std::size_t substring_bits(std::size_t a) const { return tables_.at(a).len; }

  // The k nearest codes of every query: exactly binary_index::search's
  // result (distance, then position; ids; FAISS's padding).
  knn_result search(const packed_codes& queries, std::size_t k, threads t = {}) const {
    check_fresh();
    require(queries.bits() == idx_->bits(), "mih search: the queries have K = ", queries.bits(),
            " bits but the index holds K = ", idx_->bits(), " bits");
    require(k >= 1, "mih search: k must be at least 1, got 0");
    knn_result res;
    res.queries = queries.size();
    res.k = k;
    const std::size_t entries = checked_mul(queries.size(), k, "mih search: result of queries x k");
    try {
      res.distances.assign(entries, std::numeric_limits<std::int32_t>::max());
      res.indices.assign(entries, -1);
    } catch (const std::exception&) {  // std::bad_alloc or std::length_error
      detail::fail("mih search: cannot allocate the result of ", queries.size(), " queries x k = ", k);
    }
    run_queries(queries, t, [&](query_state& st, std::size_t q) {
      const std::size_t K = idx_->bits();
      const std::size_t need = std::min(k, n_);
      if (!probe_until(st, queries, q, [&](std::size_t bound) { return st.count_upto(bound) >= need; })) {
        const auto one = byte_codes_knn(single(queries, q), idx_->codes(), n_, K, k, one_thread());
        for (std::size_t r = 0; r < k; ++r) {
          res.distances[q * k + r] = one.distances[r];
          const std::int64_t p = one.indices[r];
          res.indices[q * k + r] = p < 0 || !idx_->has_ids() ? p : idx_->ids()[p];
        }
        return;
      }
      // Every code at distance <= the k-th distance has been found.
      std::size_t r = 0;
      for (std::size_t d = 0; d <= K && r < need; ++d) {
        auto& b = st.by_distance[d];
        std::sort(b.begin(), b.end());
        for (std::size_t j = 0; j < b.size() && r < need; ++j, ++r) {
          res.distances[q * k + r] = static_cast<std::int32_t>(d);
          res.indices[q * k + r] = idx_->has_ids() ? idx_->ids()[b[j]] : static_cast<std::int64_t>(b[j]);
        }
      }
    });
    return res;
  }

  // Every code at distance < radius (strict, as FAISS) in position order:
  // exactly binary_index::range_search's result.
  range_result range_search(const packed_codes& queries, int radius, threads t = {}) const {
    check_fresh();
    require(queries.bits() == idx_->bits(), "mih range_search: the queries have K = ", queries.bits(),
            " bits but the index holds K = ", idx_->bits(), " bits");
    const std::size_t nq = queries.size();
    std::vector<std::vector<std::uint32_t>> pos(nq);
    std::vector<std::vector<std::int32_t>> dist(nq);
    if (radius > 0) {
      const std::size_t last = std::min<std::size_t>(static_cast<std::size_t>(radius) - 1, idx_->bits());
      run_queries(queries, t, [&](query_state& st, std::size_t q) {
        if (!probe_until(st, queries, q, [&](std::size_t bound) { return bound >= last; })) {
          const auto one = byte_codes_range(single(queries, q), idx_->codes(), n_, idx_->bits(), radius, one_thread());
          for (std::size_t j = 0; j < one.labels.size(); ++j) {
            pos[q].push_back(static_cast<std::uint32_t>(one.labels[j]));
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

 private:
  struct table {
    std::size_t begin = 0, len = 0;
    bool direct = false;
    std::vector<std::uint32_t> offsets;  // direct: 2^len + 1 bucket starts
    std::vector<std::uint32_t> keys;     // sorted: distinct keys
    std::vector<std::uint32_t> starts;   // sorted: bucket starts, keys.size() + 1
    std::vector<std::uint32_t> positions;

    // Positions of the codes whose substring is `key`: [first, last).
    void bucket(std::uint32_t key, const std::uint32_t*& first, const std::uint32_t*& last) const {
      if (direct) {
        first = positions.data() + offsets[key];
        last = positions.data() + offsets[key + 1];
        return;
      }
      const auto it = std::lower_bound(keys.begin(), keys.end(), key);
      if (it == keys.end() || *it != key) {
        first = last = positions.data();
        return;
      }
      const auto i = static_cast<std::size_t>(it - keys.begin());
      first = positions.data() + starts[i];
      last = positions.data() + starts[i + 1];
    }
  };

  // Per-thread search state: which codes were found, and the found codes by
  // distance.
  struct query_state {
    std::vector<std::uint64_t> seen;
    std::vector<std::uint32_t> touched;
    std::vector<std::vector<std::uint32_t>> by_distance;
    std::vector<std::uint64_t> qwords;
    // Found codes at distance < next. Codes found after a bound was
    // reached lie beyond it, so the count only grows at the top.
    std::size_t next = 0, count = 0, touched_codes = 0;

    std::size_t count_upto(std::size_t bound) {
      while (next <= bound && next < by_distance.size()) count += by_distance[next++].size();
      return count;
    }
    void reset() {
      for (std::uint32_t p : touched) seen[p / 64] = 0;
      touched.clear();
      for (auto& b : by_distance) b.clear();
      next = 0;
      count = 0;
      touched_codes = 0;
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

  // Bits [begin, begin + len) of the code at byte pointer p (len <= 32).
  static std::uint32_t substring_of(const std::uint8_t* p, std::size_t code_size, std::size_t begin, std::size_t len) {
    const std::size_t byte = begin / 8, shift = begin % 8;
    std::uint64_t v = 0;
    std::memcpy(&v, p + byte, std::min<std::size_t>(8, code_size - byte));
    return static_cast<std::uint32_t>((v >> shift) & ((std::uint64_t{1} << len) - 1));
  }
  static std::uint32_t substring_of_words(const std::uint64_t* w, std::size_t begin, std::size_t len) {
    const std::size_t word = begin / 64, shift = begin % 64;
    std::uint64_t v = w[word] >> shift;
    if (shift + len > 64) v |= w[word + 1] << (64 - shift);
    return static_cast<std::uint32_t>(v & ((std::uint64_t{1} << len) - 1));
  }

  void build(table& t) const {
    const std::uint8_t* codes = idx_->codes();
    const std::size_t cs = idx_->code_size();
    std::vector<std::uint32_t> key(n_);
    for (std::size_t j = 0; j < n_; ++j) key[j] = substring_of(codes + j * cs, cs, t.begin, t.len);
    t.positions.resize(n_);
    t.direct = t.len <= 22;
    if (t.direct) {
      // Counting sort by key: each bucket in ascending position.
      t.offsets.assign((std::size_t{1} << t.len) + 1, 0);
      for (std::uint32_t k : key) ++t.offsets[k + 1];
      for (std::size_t b = 1; b < t.offsets.size(); ++b) t.offsets[b] += t.offsets[b - 1];
      std::vector<std::uint32_t> fill(t.offsets.begin(), t.offsets.end() - 1);
      for (std::size_t j = 0; j < n_; ++j) t.positions[fill[key[j]]++] = static_cast<std::uint32_t>(j);
      return;
    }
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

  template <class Body>
  void run_queries(const packed_codes& queries, threads t, Body&& body) const {
    const std::size_t nq = queries.size();
    const std::size_t chunk = 16;
    const std::size_t chunks = (nq + chunk - 1) / chunk;
    parallel_for(static_cast<std::int64_t>(chunks), t, 1, [&](std::int64_t c) {
      query_state st;
      st.seen.assign((n_ + 63) / 64, 0);
      st.by_distance.resize(idx_->bits() + 1);
      st.qwords.resize((idx_->code_size() + 7) / 8);
      const std::size_t q0 = static_cast<std::size_t>(c) * chunk, q1 = std::min(nq, q0 + chunk);
      for (std::size_t q = q0; q < q1; ++q) {
        st.reset();
        detail::query_words(queries, q, st.qwords.size(), st.qwords.data());
        body(st, q);
      }
    });
  }

  // Probes the tables at growing radius until done(bound) holds, where
  // every code at distance <= bound has been found, or every code has;
  // false when the probes would cost more than a scan (nothing is decided).
  template <class Done>
  bool probe_until(query_state& st, const packed_codes& queries, std::size_t q, Done&& done) const {
    const std::size_t m = tables_.size(), cs = idx_->code_size();
    const std::uint8_t* codes = idx_->codes();
    const std::uint64_t* qw = queries.row(q);
    const auto visit = [&](std::uint32_t p) {
      std::uint64_t& w = st.seen[p / 64];
      const std::uint64_t bit = std::uint64_t{1} << (p % 64);
      if (w & bit) return;
      if (w == 0) st.touched.push_back(p);
      w |= bit;
      ++st.touched_codes;
      // Random accesses dominate; the dispatch only gets the popcount
      // instruction where the build flags do not.
      int d = 0;
      with_isa([&](auto) { d = detail::byte_hamming<0, false>(st.qwords.data(), codes + std::size_t{p} * cs, cs); });
      st.by_distance[static_cast<std::size_t>(d)].push_back(p);
    };
    std::size_t probes = 0;
    for (std::size_t rho = 0;; ++rho) {
      for (std::size_t a = 0; a < m; ++a) {
        const table& t = tables_[a];
        if (rho > t.len) {
          // Substring a was probed at every radius: every code was found.
          done(idx_->bits());
          return true;
        }
        // A probe or a found code costs a random access; once they would
        // exceed the budget (a quarter of the codes by default), the flat
        // scan is cheaper (uniform codes with long substrings): the caller
        // scans instead.
        const std::size_t step = binomial(t.len, rho);
        std::size_t work = 0;
        if (!add_fits(probes, step, work) || !add_fits(work, st.touched_codes, work) || work > budget_) return false;
        probes += step;
        const std::uint32_t qs = substring_of_words(qw, t.begin, t.len);
        for_each_at_distance(t.len, rho, [&](std::uint32_t flip) {
          const std::uint32_t* first;
          const std::uint32_t* last;
          t.bucket(qs ^ flip, first, last);
          for (; first != last; ++first) visit(*first);
        });
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
  std::size_t budget_ = 0;
  std::vector<table> tables_;
};

}  // namespace nmhash
