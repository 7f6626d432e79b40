// Every run-time-dispatched Hamming path of nmhash on one fixed data set,
// collected into a flat record so that two runs (two instruction-set
// levels, or two translation units built with different -m flags) compare
// with ==. Internal linkage: each including translation unit keeps its own
// copy of the probe, while the nmhash functions it calls are shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/mih.hpp"
#include "nmhash/nmhash.hpp"

namespace {

struct isa_probe_result {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> distances;
  std::vector<double> values;

  bool operator==(const isa_probe_result& o) const {
    return ids == o.ids && distances == o.distances && values == o.values;
  }
};

// Codes of `bits` bits: a few cluster centres and noisy copies of them (so
// that top-k thresholds fall and ties occur), plus uniform codes.
inline nmhash::packed_codes isa_probe_codes(std::size_t n, std::size_t bits, std::mt19937_64& rng) {
  nmhash::packed_codes centres(7, bits), out(n, bits);
  for (std::size_t c = 0; c < centres.size(); ++c)
    for (std::size_t b = 0; b < bits; ++b) centres.set_bit(c, b, rng() & 1u);
  for (std::size_t i = 0; i < n; ++i) {
    const bool uniform = rng() % 4 == 0;
    const std::size_t c = static_cast<std::size_t>(rng() % centres.size());
    for (std::size_t b = 0; b < bits; ++b) {
      const bool v = uniform ? (rng() & 1u) : (centres.bit(c, b) != (rng() % 10 == 0));
      out.set_bit(i, b, v);
    }
  }
  return out;
}

inline void isa_probe_append(isa_probe_result& r, const nmhash::knn_result& k) {
  r.ids.insert(r.ids.end(), k.indices.begin(), k.indices.end());
  r.distances.insert(r.distances.end(), k.distances.begin(), k.distances.end());
}

inline void isa_probe_append(isa_probe_result& r, const nmhash::range_result& k) {
  r.ids.insert(r.ids.end(), k.labels.begin(), k.labels.end());
  r.distances.insert(r.distances.end(), k.distances.begin(), k.distances.end());
  for (std::size_t v : k.lims) r.ids.push_back(static_cast<std::int64_t>(v));
}

// n database codes (a multiple of 16 plus a remainder exercises the vector
// kernels' tails), for K = 64 (the vector kernels), 48 and 130.
inline isa_probe_result isa_probe(std::size_t n = 2000 + 13, int threads = 2) {
  isa_probe_result r;
  const nmhash::threads t{threads};
  nmhash::scan_options so;
  so.threads = t;
  nmhash::knn_options ko;
  ko.threads = t;
  for (std::size_t bits : {64u, 48u, 130u}) {
    std::mt19937_64 rng(bits);
    const auto db = isa_probe_codes(n, bits, rng);
    const auto q = isa_probe_codes(23, bits, rng);
    std::vector<std::int32_t> ql(q.size()), dl(db.size());
    for (auto& l : ql) l = static_cast<std::int32_t>(rng() % 5);
    for (auto& l : dl) l = static_cast<std::int32_t>(rng() % 5);
    const auto qlab = nmhash::labels::single(ql), dlab = nmhash::labels::single(dl);

    for (std::size_t k : {1u, 10u, 300u}) isa_probe_append(r, nmhash::hamming_knn(q, db, k, ko));
    nmhash::binary_index idx(bits);
    idx.add(db);
    for (std::size_t k : {1u, 10u, 300u}) isa_probe_append(r, idx.search(q, k, so));
    isa_probe_append(r, idx.range_search(q, static_cast<int>(bits / 4), so));
    // One query over parts of the database (the latency path).
    nmhash::scan_options parts = so;
    parts.min_part = 256;
    nmhash::packed_codes one(1, bits);
    std::copy(q.row(0), q.row(0) + q.words_per_code(), one.row(0));
    isa_probe_append(r, idx.search(one, 50, parts));
    const nmhash::mih_index mih(idx);
    isa_probe_append(r, mih.search(q, 20, t));
    isa_probe_append(r, mih.range_search(q, static_cast<int>(bits / 5), t));

    const auto dist = nmhash::hamming_distances(q, db, t);
    r.distances.insert(r.distances.end(), dist.begin(), dist.end());
    const auto rad = nmhash::hamming_radius_search(q, db, static_cast<int>(bits / 5), t);
    r.ids.insert(r.ids.end(), rad.indices.begin(), rad.indices.end());
    r.distances.insert(r.distances.end(), rad.distances.begin(), rad.distances.end());

    nmhash::evaluation_options eo;
    eo.threads = t;
    eo.map_at = {100};
    const auto ev = nmhash::evaluate(q, db, qlab, dlab, eo);
    r.values.push_back(ev.map.tie_aware);
    r.values.push_back(ev.map.index_order);
    r.values.push_back(ev.map_at[0].tie_aware);
    r.values.push_back(ev.map_at[0].index_order);
    for (const auto& pr : ev.pr_curve) {
      r.values.push_back(pr.precision);
      r.values.push_back(pr.recall);
    }
    for (const auto tie : {nmhash::tie_rule::aware, nmhash::tie_rule::index_order}) {
      const auto loo = nmhash::leave_one_bit_out_map(q, db, qlab, dlab, tie, t);
      r.values.push_back(loo.full);
      r.values.insert(r.values.end(), loo.without_bit.begin(), loo.without_bit.end());
    }
  }
  return r;
}

}  // namespace
