// nmhash::gpu::binary_index under the SIMT execution layer against the CPU
// nmhash::binary_index: the same codes, ids, top-k (distances, ids, tie
// order, padding) and range results, through adds, removals and every
// load width of the byte layout.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "filter_reference.hpp"
#include "nmhash/cuda/binary_index.cuh"
#include "nmhash/index/binary_index.hpp"
#include "reference.hpp"

namespace {

// Codes with many ties: bits drawn with a low probability of one.
nmhash::packed_codes random_codes(std::size_t n, std::size_t k, std::mt19937_64& g, double p_one) {
  nmhash::packed_codes c(n, k);
  std::bernoulli_distribution b(p_one);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < k; ++j) c.set_bit(i, j, b(g));
  return c;
}

void check_same(const nmhash::knn_result& gpu, const nmhash::knn_result& cpu) {
  CHECK(gpu.queries == cpu.queries);
  CHECK(gpu.k == cpu.k);
  CHECK(gpu.distances == cpu.distances);
  CHECK(gpu.indices == cpu.indices);
}

void check_same(const nmhash::range_result& gpu, const nmhash::range_result& cpu) {
  CHECK(gpu.queries == cpu.queries);
  CHECK(gpu.lims == cpu.lims);
  CHECK(gpu.distances == cpu.distances);
  CHECK(gpu.labels == cpu.labels);
}

}  // namespace

TEST_CASE("gpu::binary_index equals binary_index: search, range search, adds and removals", "[gpu][index]") {
  std::mt19937_64 g(17);
  // Code sizes 1, 2, 4, 6, 8, 13, 16 and 32 bytes: every load width, one
  // and several words.
  for (std::size_t bits : {5u, 12u, 32u, 48u, 64u, 100u, 128u, 256u}) {
    INFO("K = " << bits);
    const double p_one = bits <= 12 ? 0.3 : 0.1;
    const auto db = random_codes(700, bits, g, p_one), more = random_codes(150, bits, g, p_one);
    const auto queries = random_codes(11, bits, g, p_one);
    for (bool with_ids : {false, true}) {
      INFO((with_ids ? "ids of its own" : "numbered by position"));
      nmhash::binary_index cpu(bits);
      nmhash::gpu::binary_index gpu(bits);
      if (with_ids) {
        std::vector<std::int64_t> ids(db.size()), ids2(more.size());
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(1000 + 3 * i);
        for (std::size_t i = 0; i < ids2.size(); ++i) ids2[i] = static_cast<std::int64_t>(7 * i % 40);  // duplicates
        cpu.add_with_ids(db, ids);
        gpu.add_with_ids(db, ids);
        cpu.add_with_ids(more, ids2);
        gpu.add_with_ids(more, ids2);
      } else {
        cpu.add(db);
        gpu.add(db);
        cpu.add(more);
        gpu.add(more);
      }
      REQUIRE(gpu.size() == cpu.size());
      CHECK(gpu.code_size() == cpu.code_size());
      CHECK(gpu.has_ids() == cpu.has_ids());
      for (std::size_t k : {1u, 10u, 100u, 900u})  // 900: past size(), padded
        check_same(gpu.search(queries, k), cpu.search(queries, k));
      const int radius = static_cast<int>(bits / 8 + 1);
      check_same(gpu.range_search(queries, radius), cpu.range_search(queries, radius));
      check_same(gpu.range_search(queries, 0), cpu.range_search(queries, 0));

      const std::vector<std::int64_t> drop = with_ids ? std::vector<std::int64_t>{1000, 1003, 5, 14, 99}
                                                      : std::vector<std::int64_t>{0, 1, 2, 500, 849, 12345};
      CHECK(gpu.remove_ids(drop) == cpu.remove_ids(drop));
      REQUIRE(gpu.size() == cpu.size());
      check_same(gpu.search(queries, 25), cpu.search(queries, 25));
      check_same(gpu.range_search(queries, radius), cpu.range_search(queries, radius));
      const auto back = gpu.to_host();
      CHECK(std::vector<std::uint8_t>(back.codes(), back.codes() + back.size() * back.code_size()) ==
            std::vector<std::uint8_t>(cpu.codes(), cpu.codes() + cpu.size() * cpu.code_size()));
      if (with_ids) CHECK(std::vector<std::int64_t>(back.ids(), back.ids() + back.size()) ==
                          std::vector<std::int64_t>(cpu.ids(), cpu.ids() + cpu.size()));
    }
  }
}

TEST_CASE("gpu::binary_index uploads a CPU index, and refuses what the CPU index refuses", "[gpu][index]") {
  std::mt19937_64 g(3);
  const auto db = random_codes(300, 48, g, 0.2), queries = random_codes(5, 48, g, 0.2);
  nmhash::binary_index cpu(48);
  std::vector<std::int64_t> ids(db.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i * i);
  cpu.add_with_ids(db, ids);
  nmhash::gpu::binary_index gpu(cpu);
  check_same(gpu.search(queries, 20), cpu.search(queries, 20));
  CHECK(gpu.id(7) == 49);

  nmhash::gpu::binary_index empty(48);
  const auto padded = empty.search(queries, 3);
  CHECK(padded.indices == std::vector<std::int64_t>(15, -1));
  CHECK(empty.range_search(queries, 10).lims == std::vector<std::size_t>(6, 0));

  CHECK_THROWS_WITH(nmhash::gpu::binary_index(0), Catch::Contains("K = 0"));
  CHECK_THROWS_WITH(gpu.search(random_codes(2, 32, g, 0.5), 3), Catch::Contains("K = 32"));
  CHECK_THROWS_WITH(gpu.search(queries, 0), Catch::Contains("k must be at least 1"));
  CHECK_THROWS_WITH(gpu.add(db), Catch::Contains("use add_with_ids"));
  nmhash::gpu::binary_index positional(48);
  positional.add(db);
  CHECK_THROWS_WITH(positional.add_with_ids(db, ids), Catch::Contains("ids cannot be added"));
  const std::uint8_t bad[2] = {0xFF, 0xFF};
  nmhash::gpu::binary_index k12(12);
  CHECK_THROWS_WITH(k12.add_bytes(bad, 1), Catch::Contains("bits set at positions >= K = 12"));
}

TEST_CASE("gpu::binary_index filtered search equals brute force over the admitted codes", "[gpu][index][filter]") {
  std::mt19937_64 g(41);
  for (const std::size_t K : {6, 64, 72}) {
    for (const bool own_ids : {false, true}) {
      const std::size_t n = 700;
      const auto db = ref::random_bits(n, K, g, 0.25);
      const auto qb = ref::random_bits(3, K, g, 0.25);
      std::vector<std::int64_t> ids(n);
      for (std::size_t j = 0; j < n; ++j)
        ids[j] = own_ids ? static_cast<std::int64_t>(50 + (j * 31) % 601) : static_cast<std::int64_t>(j);
      nmhash::binary_index host(K);
      if (own_ids)
        host.add_with_ids(ref::pack(db, K), ids);
      else
        host.add(ref::pack(db, K));
      const nmhash::gpu::binary_index dev(host);
      const auto q = ref::pack(qb, K);
      std::vector<std::int64_t> few, many;
      for (std::size_t j = 0; j < n; ++j) {
        if (j % 90 == 3) few.push_back(ids[j]);
        if (j % 9 == 0) many.push_back(ids[j]);
      }
      const std::vector<std::pair<const char*, nmhash::search_filter>> filters{
          {"allow few", nmhash::search_filter::allow_ids(few)},
          {"deny some", nmhash::search_filter::deny_ids(many)},
          {"deny everything", nmhash::search_filter::deny_ids(ids)},
          {"predicate", nmhash::search_filter::where([](std::size_t j) { return j % 4 == 1; })}};
      for (const auto& [name, filter] : filters) {
        INFO(name << ", K = " << K << (own_ids ? ", ids" : ", positions"));
        const auto admitted = ref::admitted_by(filter, ids);
        for (const std::size_t k : {1, 9, 800}) {
          std::vector<std::int32_t> d;
          std::vector<std::int64_t> i;
          ref::filtered_knn(qb, db, ids, admitted, k, d, i);
          const auto r = dev.search(q, k, filter);
          CHECK(r.distances == d);
          CHECK(r.indices == i);
          check_same(dev.search(q, k, dev.prepare(filter)), host.search(q, k, filter));
        }
        const int radius = static_cast<int>(K / 4);
        std::vector<std::size_t> lims;
        std::vector<std::int32_t> d;
        std::vector<std::int64_t> i;
        ref::filtered_range(qb, db, ids, admitted, radius, lims, d, i);
        const auto r = dev.range_search(q, radius, filter);
        CHECK(r.lims == lims);
        CHECK(r.distances == d);
        CHECK(r.labels == i);
      }
    }
  }
}
