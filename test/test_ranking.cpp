#include <catch2/catch.hpp>

#include <limits>
#include <random>

#include "nmhash/nmhash.hpp"
#include "reference.hpp"

namespace {

// Brute force: sort (distance, index) pairs.
void check_knn(const ref::bits_t& qb, const ref::bits_t& db, std::size_t k_bits, std::size_t k,
               const nmhash::knn_options& opt = {}) {
  const auto q = ref::pack(qb, k_bits), d = ref::pack(db, k_bits);
  const auto res = nmhash::hamming_knn(q, d, k, opt);
  REQUIRE(res.queries == qb.size());
  REQUIRE(res.k == k);
  for (std::size_t i = 0; i < qb.size(); ++i) {
    std::vector<std::pair<int, std::int64_t>> all;
    for (std::size_t j = 0; j < db.size(); ++j)
      all.emplace_back(ref::distance(qb[i], db[j]), static_cast<std::int64_t>(j));
    std::sort(all.begin(), all.end());
    for (std::size_t r = 0; r < k; ++r) {
      if (r < all.size()) {
        REQUIRE(res.distance(i, r) == all[r].first);
        REQUIRE(res.index(i, r) == all[r].second);
      } else {
        REQUIRE(res.distance(i, r) == std::numeric_limits<std::int32_t>::max());
        REQUIRE(res.index(i, r) == -1);
      }
    }
  }
}

}  // namespace

TEST_CASE("hamming_distances matches brute force at every width", "[ranking]") {
  std::mt19937_64 g(1);
  for (std::size_t k : {1, 64, 65, 128, 200}) {
    const auto qb = ref::random_bits(4, k, g), db = ref::random_bits(37, k, g);
    const auto d = nmhash::hamming_distances(ref::pack(qb, k), ref::pack(db, k));
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 37; ++j) REQUIRE(d[i * 37 + j] == ref::distance(qb[i], db[j]));
  }
}

TEST_CASE("hamming_knn equals sorted brute force, ties by ascending index", "[ranking]") {
  std::mt19937_64 g(2);
  for (std::size_t k_bits : {1, 5, 64, 65, 128, 200}) {
    DYNAMIC_SECTION("K = " << k_bits) {
      const auto qb = ref::random_bits(9, k_bits, g), db = ref::random_bits(700, k_bits, g);
      for (std::size_t k : {1, 10, 100, 699, 700, 701, 1000}) check_knn(qb, db, k_bits, k);
    }
  }
}

TEST_CASE("hamming_knn with heavy ties, small blocks and several threads", "[ranking]") {
  std::mt19937_64 g(3);
  // Biased bits: few distinct codes, many ties.
  const auto qb = ref::random_bits(13, 6, g, 0.9), db = ref::random_bits(3000, 6, g, 0.9);
  nmhash::knn_options opt;
  opt.database_block = 7;
  opt.query_tile = 3;
  opt.threads.count = 2;
  for (std::size_t k : {1, 2, 50, 257, 2999, 3000}) check_knn(qb, db, 6, k, opt);
}

TEST_CASE("hamming_knn when every distance is equal and when the database is empty", "[ranking]") {
  const ref::bits_t db(50, std::vector<int>(70, 1));
  const ref::bits_t qb(2, std::vector<int>(70, 0));
  check_knn(qb, db, 70, 20);
  check_knn(qb, db, 70, 50);
  const ref::bits_t empty;
  check_knn(qb, empty, 70, 5);
  REQUIRE_THROWS_WITH(nmhash::hamming_knn(ref::pack(qb, 70), ref::pack(db, 70), 0),
                      Catch::Contains("k must be at least 1"));
  REQUIRE_THROWS_WITH(nmhash::hamming_knn(ref::pack(qb, 70), nmhash::packed_codes(3, 71), 1),
                      Catch::Contains("K = 70 bits but database codes have K = 71"));
}

TEST_CASE("hamming_radius_search returns the ball sorted by (distance, index)", "[ranking]") {
  std::mt19937_64 g(4);
  for (std::size_t k : {1, 12, 64, 65, 200}) {
    const auto qb = ref::random_bits(6, k, g), db = ref::random_bits(400, k, g);
    for (int r : {0, 1, 2, static_cast<int>(k) / 2, static_cast<int>(k), static_cast<int>(k) + 5}) {
      const auto res = nmhash::hamming_radius_search(ref::pack(qb, k), ref::pack(db, k), r);
      REQUIRE(res.queries() == 6);
      for (std::size_t i = 0; i < 6; ++i) {
        std::vector<std::pair<int, std::int64_t>> expect;
        for (std::size_t j = 0; j < db.size(); ++j) {
          const int d = ref::distance(qb[i], db[j]);
          if (d <= r) expect.emplace_back(d, static_cast<std::int64_t>(j));
        }
        std::sort(expect.begin(), expect.end());
        REQUIRE(res.count(i) == expect.size());
        for (std::size_t s = 0; s < expect.size(); ++s) {
          REQUIRE(res.distances[res.offsets[i] + s] == expect[s].first);
          REQUIRE(res.indices[res.offsets[i] + s] == expect[s].second);
        }
      }
    }
  }
  REQUIRE_THROWS_AS(nmhash::hamming_radius_search(nmhash::packed_codes(1, 8),
                                                  nmhash::packed_codes(1, 8), -1),
                    nmhash::error);
}
