// The GPU half of the mixed .cu/.cpp binary: packs and ranks on the device
// and compares with the CPU library. Only runs where a CUDA device answers.
#include "device_part.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/loo_map.cuh"
#include "nmhash/cuda/map.cuh"
#include "nmhash/cuda/pack.cuh"
#include "nmhash/nmhash.hpp"

namespace {

template <class T>
T* to_device(const std::vector<T>& v) {
  T* d = nullptr;
  NMHASH_CUDA_CHECK(cudaMalloc(&d, v.size() * sizeof(T) + 1));
  NMHASH_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <class T>
std::vector<T> to_host(const T* d, std::size_t n) {
  std::vector<T> v(n);
  NMHASH_CUDA_CHECK(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

}  // namespace

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

std::string run_device_checks() {
  std::mt19937_64 g(7);
  std::normal_distribution<float> normal;
  const std::size_t nq = 50, n = 20000;
  for (std::size_t bits : {12, 64, 100, 200}) {
    std::vector<float> xq(nq * bits), xd(n * bits);
    for (auto& v : xq) v = normal(g);
    for (auto& v : xd) v = normal(g);
    const auto cq = nmhash::pack_signs(xq.data(), nq, bits), cd = nmhash::pack_signs(xd.data(), n, bits);
    float* dxq = to_device(xq);
    float* dxd = to_device(xd);
    std::uint64_t *dq = nullptr, *dd = nullptr;
    NMHASH_CUDA_CHECK(cudaMalloc(&dq, cq.size() * cq.words_per_code() * 8));
    NMHASH_CUDA_CHECK(cudaMalloc(&dd, cd.size() * cd.words_per_code() * 8));
    nmhash::gpu::pack_signs(dxq, nq, bits, dq, nullptr);
    nmhash::gpu::pack_signs(dxd, n, bits, dd, nullptr);
    const auto hq = to_host(dq, cq.size() * cq.words_per_code());
    if (!std::equal(hq.begin(), hq.end(), cq.data())) return "gpu::pack_signs differs from pack_signs";
    for (std::size_t k : {std::size_t{1}, std::size_t{100}, n}) {
      std::int32_t* ddist = nullptr;
      std::int64_t* didx = nullptr;
      NMHASH_CUDA_CHECK(cudaMalloc(&ddist, nq * k * sizeof(std::int32_t)));
      NMHASH_CUDA_CHECK(cudaMalloc(&didx, nq * k * sizeof(std::int64_t)));
      nmhash::gpu::hamming_knn(dq, nq, dd, n, bits, k, ddist, didx, nullptr);
      NMHASH_CUDA_CHECK(cudaDeviceSynchronize());
      const auto cpu = nmhash::hamming_knn(cq, cd, k);
      if (to_host(ddist, nq * k) != cpu.distances || to_host(didx, nq * k) != cpu.indices)
        return "gpu::hamming_knn differs from hamming_knn at K = " + std::to_string(bits) +
               ", k = " + std::to_string(k);
      cudaFree(ddist);
      cudaFree(didx);
    }
    std::vector<std::int32_t> ql(nq), dl(n);
    for (auto& v : ql) v = static_cast<std::int32_t>(g() % 10);
    for (auto& v : dl) v = static_cast<std::int32_t>(g() % 10);
    std::int32_t* dql = to_device(ql);
    std::int32_t* ddl = to_device(dl);
    void* ws = nullptr;
    double* dmap = nullptr;
    NMHASH_CUDA_CHECK(cudaMalloc(&ws, nmhash::gpu::map_workspace_bytes(nq)));
    NMHASH_CUDA_CHECK(cudaMalloc(&dmap, 4 * sizeof(double)));
    nmhash::gpu::mean_average_precision(dq, nq, dd, n, bits, nmhash::gpu::class_id_relevance{dql, ddl}, 0, dmap,
                                        ws, nmhash::gpu::map_workspace_bytes(nq), nullptr);
    const auto map = to_host(dmap, 4);
    const auto cpu_map = nmhash::mean_average_precision(cq, cd, nmhash::labels::single(ql), nmhash::labels::single(dl));
    if (std::abs(map[0] - cpu_map.tie_aware) > 1e-9 || std::abs(map[1] - cpu_map.index_order) > 1e-9)
      return "gpu::mean_average_precision differs from mean_average_precision at K = " + std::to_string(bits);
    if (bits <= 128) {
      void* lws = nullptr;
      double* dloo = nullptr;
      NMHASH_CUDA_CHECK(cudaMalloc(&lws, nmhash::gpu::loo_workspace_bytes(nq, bits)));
      NMHASH_CUDA_CHECK(cudaMalloc(&dloo, (bits + 1) * sizeof(double)));
      nmhash::gpu::leave_one_bit_out_map(dq, nq, dd, n, bits, nmhash::gpu::class_id_relevance{dql, ddl}, dloo,
                                         lws, nmhash::gpu::loo_workspace_bytes(nq, bits), nullptr);
      const auto loo = to_host(dloo, bits + 1);
      const auto cpu_loo =
          nmhash::leave_one_bit_out_map(cq, cd, nmhash::labels::single(ql), nmhash::labels::single(dl));
      for (std::size_t b = 0; b < bits; ++b)
        if (std::abs(loo[b] - cpu_loo.without_bit[b]) > 1e-9)
          return "gpu::leave_one_bit_out_map differs at K = " + std::to_string(bits) + ", bit " + std::to_string(b);
      cudaFree(lws);
      cudaFree(dloo);
    }
    cudaFree(ws);
    cudaFree(dmap);
    cudaFree(dql);
    cudaFree(ddl);
    cudaFree(dxq);
    cudaFree(dxd);
    cudaFree(dq);
    cudaFree(dd);
  }
  return {};
}
