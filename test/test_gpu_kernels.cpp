// nmhash's CUDA kernels run under the SIMT execution layer (the kernel
// source nvcc compiles, executed on the CPU) and compared with the CPU
// library.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "nmhash/cuda/api.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/loo_map.cuh"
#include "nmhash/cuda/map.cuh"
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

struct shape {
  std::size_t bits, nq, n;
  double p_one;
};

// Random query and database codes with class ids in [0, classes).
struct random_case {
  nmhash::packed_codes q, db;
  std::vector<std::int32_t> ql, dl;
  random_case(const shape& s, int classes, std::mt19937_64& g)
      : q(random_codes(s.nq, s.bits, g, s.p_one)), db(random_codes(s.n, s.bits, g, s.p_one)), ql(s.nq), dl(s.n) {
    for (auto& v : ql) v = static_cast<std::int32_t>(g() % static_cast<unsigned>(classes));
    for (auto& v : dl) v = static_cast<std::int32_t>(g() % static_cast<unsigned>(classes));
  }
};

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
  for (const shape s : {shape{1, 3, 300, 0.5}, shape{12, 4, 700, 0.8}, shape{64, 3, 600, 0.5},
                        shape{65, 2, 555, 0.5}, shape{128, 2, 300, 0.5}, shape{200, 2, 260, 0.5},
                        shape{4096, 2, 40, 0.5}, shape{64, 19, 333, 0.6}, shape{2000, 3, 50, 0.5}}) {
    DYNAMIC_SECTION("K = " << s.bits << ", N = " << s.n) {
      const random_case c(s, 2, g);
      const auto& q = c.q;
      const auto& db = c.db;
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

TEST_CASE("gpu::mean_average_precision equals the CPU MAP in both conventions", "[gpu][map]") {
  std::mt19937_64 g(4);
  for (const shape s : {shape{1, 3, 100, 0.5}, shape{12, 5, 700, 0.8}, shape{48, 4, 555, 0.5},
                        shape{64, 3, 300, 0.5}, shape{65, 3, 300, 0.5}, shape{200, 2, 257, 0.5},
                        shape{16, 2, 0, 0.5}, shape{4096, 2, 40, 0.5}}) {
    DYNAMIC_SECTION("K = " << s.bits << ", N = " << s.n) {
      const random_case c(s, 4, g);
      const auto& q = c.q;
      const auto& db = c.db;
      const auto& ql = c.ql;
      const auto& dl = c.dl;
      std::vector<unsigned char> ws(nmhash::gpu::map_workspace_bytes(s.nq));
      double map[4];
      const std::size_t at = 50;
      nmhash::gpu::mean_average_precision(q.data(), s.nq, db.data(), s.n, s.bits,
                                          nmhash::gpu::class_id_relevance{ql.data(), dl.data()}, at, map,
                                          ws.data(), ws.size(), nullptr);
      nmhash::evaluation_options opt;
      opt.map_at = {at};
      opt.precision_at.clear();
      const auto cpu = nmhash::evaluate(q, db, nmhash::labels::single(ql), nmhash::labels::single(dl), opt);
      REQUIRE(map[0] == Catch::Detail::Approx(cpu.map.tie_aware).epsilon(1e-12).margin(1e-15));
      REQUIRE(map[1] == Catch::Detail::Approx(cpu.map.index_order).epsilon(1e-12).margin(1e-15));
      REQUIRE(map[2] == Catch::Detail::Approx(cpu.map_at[0].tie_aware).epsilon(1e-12).margin(1e-15));
      REQUIRE(map[3] == Catch::Detail::Approx(cpu.map_at[0].index_order).epsilon(1e-12).margin(1e-15));

      // Multi-label sets of 70 labels (two words).
      const std::size_t L = 70;
      std::vector<std::uint8_t> qm(s.nq * L), dm(s.n * L);
      for (auto& v : qm) v = g() % 20 == 0;
      for (auto& v : dm) v = g() % 20 == 0;
      const auto QL = nmhash::labels::multi_hot(qm.data(), s.nq, L);
      const auto DL = nmhash::labels::multi_hot(dm.data(), s.n, L);
      nmhash::gpu::mean_average_precision(q.data(), s.nq, db.data(), s.n, s.bits,
                                          nmhash::gpu::label_set_relevance{QL.sets(), DL.sets(), 2}, 0, map,
                                          ws.data(), ws.size(), nullptr);
      const auto cpu_multi = nmhash::mean_average_precision(q, db, QL, DL);
      REQUIRE(map[0] == Catch::Detail::Approx(cpu_multi.tie_aware).epsilon(1e-12).margin(1e-15));
      REQUIRE(map[1] == Catch::Detail::Approx(cpu_multi.index_order).epsilon(1e-12).margin(1e-15));
    }
  }
  double map[4];
  REQUIRE_THROWS_WITH(nmhash::gpu::mean_average_precision(nullptr, 4, nullptr, 0, 16,
                                                          nmhash::gpu::class_id_relevance{nullptr, nullptr}, 0, map,
                                                          nullptr, 8, nullptr),
                      Catch::Contains("workspace of 8 bytes, needs 128"));
}

TEST_CASE("harmonic_series agrees with the harmonic table", "[gpu][map]") {
  const nmhash::harmonic_numbers table;
  const nmhash::harmonic_series series;
  for (auto [a, b] : {std::pair<std::uint64_t, std::uint64_t>{0, 1}, {0, 63}, {0, 64}, {3, 65}, {10, 1000},
                      {64, 70000}, {69000, 69001}, {500, 60000}})
    REQUIRE(series.diff(a, b) == Catch::Detail::Approx(table.diff(a, b)).epsilon(1e-13));
}

TEST_CASE("gpu::leave_one_bit_out_map equals the CPU tie-aware values", "[gpu][loo]") {
  std::mt19937_64 g(5);
  for (const shape s : {shape{2, 3, 100, 0.5}, shape{12, 4, 600, 0.85}, shape{60, 3, 555, 0.5},
                        shape{64, 2, 300, 0.5}, shape{65, 2, 200, 0.5}, shape{128, 2, 150, 0.5},
                        shape{20, 2, 0, 0.5}}) {
    DYNAMIC_SECTION("K = " << s.bits << ", N = " << s.n) {
      const random_case c(s, 3, g);
      const auto& q = c.q;
      const auto& db = c.db;
      const auto& ql = c.ql;
      const auto& dl = c.dl;
      std::vector<unsigned char> ws(nmhash::gpu::loo_workspace_bytes(s.nq, s.bits));
      std::vector<double> out(s.bits + 1);
      nmhash::gpu::leave_one_bit_out_map(q.data(), s.nq, db.data(), s.n, s.bits,
                                         nmhash::gpu::class_id_relevance{ql.data(), dl.data()}, out.data(),
                                         ws.data(), ws.size(), nullptr);
      const auto cpu = nmhash::leave_one_bit_out_map(q, db, nmhash::labels::single(ql), nmhash::labels::single(dl));
      REQUIRE(out[s.bits] == Catch::Detail::Approx(cpu.full).epsilon(1e-12).margin(1e-15));
      for (std::size_t k = 0; k < s.bits; ++k)
        REQUIRE(out[k] == Catch::Detail::Approx(cpu.without_bit[k]).epsilon(1e-12).margin(1e-15));
    }
  }
  std::vector<double> out(200);
  REQUIRE_THROWS_WITH(nmhash::gpu::leave_one_bit_out_map(nullptr, 1, nullptr, 0, 129,
                                                         nmhash::gpu::class_id_relevance{nullptr, nullptr},
                                                         out.data(), nullptr, 0, nullptr),
                      Catch::Contains("K = 129 outside [2, 128]"));
}

TEST_CASE("the CPU API on nmhash::cuda gives the CPU results", "[gpu][api]") {
  std::mt19937_64 g(6);
  std::normal_distribution<float> normal;
  const std::size_t nq = 5, n = 400, bits = 60;
  std::vector<float> xq(nq * bits), xd(n * bits);
  for (auto& v : xq) v = normal(g);
  for (auto& v : xd) v = normal(g);
  const auto q = nmhash::pack_signs<nmhash::cuda>(xq.data(), nq, bits);
  const auto db = nmhash::pack_signs<nmhash::cuda>(xd.data(), n, bits);
  REQUIRE(q == nmhash::pack_signs<nmhash::cpu>(xq.data(), nq, bits));
  REQUIRE(db == nmhash::pack_signs(xd.data(), n, bits));
  const auto gk = nmhash::hamming_knn<nmhash::cuda>(q, db, 30);
  const auto ck = nmhash::hamming_knn<nmhash::cpu>(q, db, 30);
  REQUIRE(gk.distances == ck.distances);
  REQUIRE(gk.indices == ck.indices);
  std::vector<std::int32_t> ql(nq), dl(n);
  for (auto& v : ql) v = static_cast<std::int32_t>(g() % 5);
  for (auto& v : dl) v = static_cast<std::int32_t>(g() % 5);
  const auto QL = nmhash::labels::single(ql), DL = nmhash::labels::single(dl);
  const auto gm = nmhash::mean_average_precision<nmhash::cuda>(q, db, QL, DL);
  const auto cm = nmhash::mean_average_precision<nmhash::cpu>(q, db, QL, DL);
  REQUIRE(gm.tie_aware == Catch::Detail::Approx(cm.tie_aware).epsilon(1e-12));
  REQUIRE(gm.index_order == Catch::Detail::Approx(cm.index_order).epsilon(1e-12));
  const auto gl = nmhash::leave_one_bit_out_map<nmhash::cuda>(q, db, QL, DL);
  const auto cl = nmhash::leave_one_bit_out_map<nmhash::cpu>(q, db, QL, DL);
  REQUIRE(gl.full == Catch::Detail::Approx(cl.full).epsilon(1e-12));
  for (std::size_t k = 0; k < bits; ++k)
    REQUIRE(gl.without_bit[k] == Catch::Detail::Approx(cl.without_bit[k]).epsilon(1e-12));
  REQUIRE_THROWS_WITH(nmhash::leave_one_bit_out_map<nmhash::cuda>(q, db, QL, DL, nmhash::tie_rule::index_order),
                      Catch::Contains("only the tie-aware convention"));
}
