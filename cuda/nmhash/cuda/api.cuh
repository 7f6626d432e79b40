// The CPU API on the GPU: explicit specialisations for nmhash::cuda of
// pack_signs, hamming_knn, mean_average_precision and leave_one_bit_out_map,
// taking and returning the same host-side types, so that moving a call
// between CPU and GPU changes one template argument:
//
//   auto top = nmhash::hamming_knn<nmhash::cuda>(queries, database, 100);
//
// Each call copies its inputs to the device, runs the kernels on the
// default stream and copies the results back. Engines that keep codes on
// the device call the launchers in namespace nmhash::gpu directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/loo_map.cuh"
#include "nmhash/cuda/map.cuh"
#include "nmhash/cuda/pack.cuh"
#include "nmhash/nmhash.hpp"

namespace nmhash {

namespace gpu {

namespace detail {

inline device_buffer<std::uint64_t> upload(const packed_codes& c) {
  return device_buffer<std::uint64_t>(c.data(), c.size() * c.words_per_code());
}

// Device copies of both label sets and the relevance functor over them.
struct device_labels {
  device_buffer<std::int32_t> q_ids, db_ids;
  device_buffer<std::uint64_t> q_sets, db_sets;
  bool multi;
  unsigned words;
  device_labels(const labels& ql, const labels& dl)
      : q_ids(ql.is_multi() ? nullptr : ql.ids(), ql.is_multi() ? 0 : ql.size()),
        db_ids(dl.is_multi() ? nullptr : dl.ids(), dl.is_multi() ? 0 : dl.size()),
        q_sets(ql.is_multi() ? ql.sets() : nullptr, ql.is_multi() ? ql.size() * ql.words() : 0),
        db_sets(dl.is_multi() ? dl.sets() : nullptr, dl.is_multi() ? dl.size() * dl.words() : 0),
        multi(ql.is_multi()),
        words(static_cast<unsigned>(ql.words())) {}
  template <class F>
  void with_relevance(F&& f) {
    if (multi)
      f(label_set_relevance{q_sets.data(), db_sets.data(), words});
    else
      f(class_id_relevance{q_ids.data(), db_ids.data()});
  }
};

}  // namespace detail
}  // namespace gpu

namespace gpu::detail {
template <class T>
packed_codes pack_signs_on_device(const T* x, std::size_t n, std::size_t k) {
  packed_codes out(n, k);
  device_buffer<T> dx(x, n * k);
  device_buffer<std::uint64_t> dc(n * out.words_per_code());
  gpu::pack_signs(dx.data(), n, k, dc.data(), nullptr);
  dc.copy_to(out.data());
  return out;
}
}  // namespace gpu::detail

// NaN packs as -1 here (the CPU version rejects it).
template <>
inline packed_codes pack_signs<cuda, float>(const float* x, std::size_t n, std::size_t k) {
  return gpu::detail::pack_signs_on_device(x, n, k);
}

template <>
inline packed_codes pack_signs<cuda, double>(const double* x, std::size_t n, std::size_t k) {
  return gpu::detail::pack_signs_on_device(x, n, k);
}

template <>
inline knn_result hamming_knn<cuda>(const packed_codes& queries, const packed_codes& database,
                                    std::size_t k, const knn_options&) {
  detail::check_same_bits(queries, database, "hamming_knn<cuda>");
  require(k >= 1, "hamming_knn<cuda>: k must be at least 1");
  knn_result res;
  res.queries = queries.size();
  res.k = k;
  res.distances.resize(queries.size() * k);
  res.indices.resize(queries.size() * k);
  auto dq = gpu::detail::upload(queries), ddb = gpu::detail::upload(database);
  gpu::device_buffer<std::int32_t> dd(res.distances.size());
  gpu::device_buffer<std::int64_t> di(res.indices.size());
  gpu::hamming_knn(dq.data(), queries.size(), ddb.data(), database.size(), database.bits(), k,
                   dd.data(), di.data(), nullptr);
  dd.copy_to(res.distances.data());
  di.copy_to(res.indices.data());
  return res;
}

template <>
inline tie_pair mean_average_precision<cuda>(const packed_codes& queries,
                                             const packed_codes& database,
                                             const labels& query_labels,
                                             const labels& database_labels, threads, bool) {
  detail::check_inputs(queries, database, query_labels, database_labels,
                       "mean_average_precision<cuda>");
  auto dq = gpu::detail::upload(queries), ddb = gpu::detail::upload(database);
  gpu::detail::device_labels dl(query_labels, database_labels);
  gpu::device_buffer<unsigned char> ws(gpu::map_workspace_bytes(queries.size()));
  gpu::device_buffer<double> dmap(4);
  dl.with_relevance([&](auto rel) {
    gpu::mean_average_precision(dq.data(), queries.size(), ddb.data(), database.size(),
                                database.bits(), rel, 0, dmap.data(), ws.data(), ws.size(),
                                nullptr);
  });
  double map[4];
  dmap.copy_to(map);
  return {map[0], map[1]};
}

template <>
inline loo_map_result leave_one_bit_out_map<cuda>(const packed_codes& queries,
                                                  const packed_codes& database,
                                                  const labels& query_labels,
                                                  const labels& database_labels, tie_rule ties,
                                                  threads) {
  detail::check_inputs(queries, database, query_labels, database_labels,
                       "leave_one_bit_out_map<cuda>");
  require(ties == tie_rule::aware,
          "leave_one_bit_out_map<cuda>: only the tie-aware convention runs on the GPU");
  const std::size_t K = database.bits();
  auto dq = gpu::detail::upload(queries), ddb = gpu::detail::upload(database);
  gpu::detail::device_labels dl(query_labels, database_labels);
  gpu::device_buffer<unsigned char> ws(gpu::loo_workspace_bytes(queries.size(), K));
  gpu::device_buffer<double> dout(K + 1);
  dl.with_relevance([&](auto rel) {
    gpu::leave_one_bit_out_map(dq.data(), queries.size(), ddb.data(), database.size(), K, rel,
                               dout.data(), ws.data(), ws.size(), nullptr);
  });
  std::vector<double> out(K + 1);
  dout.copy_to(out.data());
  loo_map_result res;
  res.ties = ties;
  res.full = out[K];
  res.without_bit.assign(out.begin(), out.begin() + static_cast<long>(K));
  return res;
}

}  // namespace nmhash
