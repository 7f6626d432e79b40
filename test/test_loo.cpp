#include <catch2/catch.hpp>

#include <random>

#include "nmhash/nmhash.hpp"
#include "reference.hpp"

using Catch::Detail::Approx;

namespace {

// Naive leave-one-bit-out: drop the bit, evaluate again.
void check_loo(std::size_t k, std::size_t nq, std::size_t n, int classes, std::uint64_t seed,
               double p_one) {
  std::mt19937_64 g(seed);
  const auto q = ref::pack(ref::random_bits(nq, k, g, p_one), k);
  const auto d = ref::pack(ref::random_bits(n, k, g, p_one), k);
  std::vector<std::int32_t> ql(nq), dl(n);
  for (auto& v : ql) v = static_cast<std::int32_t>(g() % classes);
  for (auto& v : dl) v = static_cast<std::int32_t>(g() % classes);
  const auto QL = nmhash::labels::single(ql), DL = nmhash::labels::single(dl);
  const auto aw = nmhash::leave_one_bit_out_map(q, d, QL, DL, nmhash::tie_rule::aware);
  const auto io = nmhash::leave_one_bit_out_map(q, d, QL, DL, nmhash::tie_rule::index_order);
  const auto full = nmhash::mean_average_precision(q, d, QL, DL);
  REQUIRE(aw.full == Approx(full.tie_aware).margin(1e-12));
  REQUIRE(io.full == Approx(full.index_order).margin(1e-12));
  REQUIRE(aw.without_bit.size() == k);
  for (std::size_t b = 0; b < k; ++b) {
    const auto m = nmhash::mean_average_precision(nmhash::drop_bits(q, {b}), nmhash::drop_bits(d, {b}), QL, DL);
    REQUIRE(aw.without_bit[b] == Approx(m.tie_aware).margin(1e-12));
    REQUIRE(io.without_bit[b] == Approx(m.index_order).margin(1e-12));
  }
}

}  // namespace

TEST_CASE("leave-one-bit-out MAP equals dropping each bit and evaluating again", "[loo]") {
  SECTION("K = 2") { check_loo(2, 5, 100, 3, 1, 0.5); }
  SECTION("K = 12, many ties") { check_loo(12, 6, 500, 4, 2, 0.85); }
  SECTION("K = 60") { check_loo(60, 4, 700, 10, 3, 0.5); }
  SECTION("K = 64") { check_loo(64, 3, 300, 5, 4, 0.5); }
  SECTION("K = 65") { check_loo(65, 3, 300, 5, 5, 0.5); }
  SECTION("K = 128") { check_loo(128, 2, 250, 5, 6, 0.5); }
  SECTION("K = 200") { check_loo(200, 2, 200, 5, 7, 0.5); }
  SECTION("database smaller than one 16-word group") { check_loo(20, 3, 9, 2, 8, 0.5); }
  SECTION("thousands of items in one cell (counter spills and carries)") {
    check_loo(8, 3, 3000, 2, 9, 0.97);
  }
}

TEST_CASE("leave-one-bit-out MAP rejects K = 1 and handles an empty query set", "[loo]") {
  const nmhash::packed_codes one(2, 1);
  REQUIRE_THROWS_WITH(nmhash::leave_one_bit_out_map(one, one, nmhash::labels::single({0, 1}), nmhash::labels::single({0, 1})),
                      Catch::Contains("at least 2 bits"));
  const nmhash::packed_codes none(0, 8), db(3, 8);
  const auto r = nmhash::leave_one_bit_out_map(none, db, nmhash::labels::single({}), nmhash::labels::single({0, 0, 1}));
  REQUIRE(r.full == 0.0);
  REQUIRE(r.without_bit == std::vector<double>(8, 0.0));
}
