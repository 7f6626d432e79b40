// nmhash's CUDA kernels run under the SIMT execution layer (the kernel
// source nvcc compiles, executed on the CPU) and compared with the CPU
// library.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/pack.cuh"
#include "nmhash/nmhash.hpp"

namespace {

nmhash::packed_codes random_codes(std::size_t n, std::size_t k, std::mt19937_64& g, double p_one = 0.5) {
  nmhash::packed_codes c(n, k);
  std::bernoulli_distribution b(p_one);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < k; ++j) c.set_bit(i, j, b(g));
  return c;
}

}  // namespace

TEST_CASE("gpu::pack_signs equals pack_signs, tails and several blocks", "[gpu][pack]") {
  std::mt19937_64 g(1);
  std::normal_distribution<float> normal;
  for (std::size_t k : {1, 31, 32, 33, 64, 65, 100, 128, 200}) {
    DYNAMIC_SECTION("K = " << k) {
      const std::size_t n = 37;
      std::vector<float> x(n * k);
      for (auto& v : x) v = normal(g);
      x[0] = 0.0f;
      x[x.size() - 1] = -0.0f;
      nmhash::packed_codes out(n, k);
      nmhash::gpu::pack_signs(x.data(), n, k, out.data(), nullptr);
      REQUIRE(out == nmhash::pack_signs(x.data(), n, k));
    }
  }
}

TEST_CASE("gpu::hamming_knn equals hamming_knn, distances and tie order", "[gpu][topk]") {
  std::mt19937_64 g(2);
  struct shape {
    std::size_t bits, nq, n;
    double p_one;
  };
  for (const shape s : {shape{1, 3, 300, 0.5}, shape{12, 4, 700, 0.8}, shape{64, 3, 600, 0.5},
                        shape{65, 2, 555, 0.5}, shape{128, 2, 300, 0.5}, shape{200, 2, 260, 0.5},
                        shape{4096, 2, 40, 0.5}}) {
    DYNAMIC_SECTION("K = " << s.bits << ", N = " << s.n) {
      const auto q = random_codes(s.nq, s.bits, g, s.p_one);
      const auto db = random_codes(s.n, s.bits, g, s.p_one);
      for (std::size_t k : {std::size_t{1}, std::size_t{17}, s.n - 1, s.n, s.n + 9}) {
        std::vector<std::int32_t> dist(s.nq * k);
        std::vector<std::int64_t> idx(s.nq * k);
        nmhash::gpu::hamming_knn(q.data(), s.nq, db.data(), s.n, s.bits, k, dist.data(), idx.data(), nullptr);
        const auto cpu = nmhash::hamming_knn(q, db, k);
        REQUIRE(dist == cpu.distances);
        REQUIRE(idx == cpu.indices);
      }
    }
  }
}

TEST_CASE("gpu::hamming_knn on an empty database pads every row", "[gpu][topk]") {
  std::mt19937_64 g(3);
  const auto q = random_codes(2, 16, g);
  std::vector<std::int32_t> dist(2 * 3);
  std::vector<std::int64_t> idx(2 * 3);
  nmhash::gpu::hamming_knn(q.data(), 2, nullptr, 0, 16, 3, dist.data(), idx.data(), nullptr);
  REQUIRE(dist == std::vector<std::int32_t>(6, 2147483647));
  REQUIRE(idx == std::vector<std::int64_t>(6, -1));
  REQUIRE_THROWS_WITH(nmhash::gpu::hamming_knn(q.data(), 2, nullptr, 0, 16, 0, dist.data(), idx.data(), nullptr),
                      Catch::Contains("k must be at least 1"));
}
