#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "nmhash/nmhash.hpp"
#include "reference.hpp"

using nmhash::packed_codes;

TEST_CASE("packed_codes layout: bit j in word j/64 at position j%64, padding zero", "[codes]") {
  for (std::size_t k : {1, 63, 64, 65, 128, 200}) {
    packed_codes c(3, k);
    REQUIRE(c.words_per_code() == (k + 63) / 64);
    c.set_bit(1, k - 1, true);
    REQUIRE(c.row(1)[(k - 1) / 64] == (std::uint64_t{1} << ((k - 1) % 64)));
    REQUIRE(c.bit(1, k - 1));
    REQUIRE_FALSE(c.bit(0, k - 1));
  }
  REQUIRE_THROWS_AS(packed_codes(2, 0), nmhash::error);
  REQUIRE_THROWS_AS(packed_codes(2, nmhash::max_code_bits + 1), nmhash::error);
}

TEST_CASE("pack_signs uses sgn(0) = +1 and rejects NaN", "[codes]") {
  const float x[6] = {0.0f, -0.0f, -1e-30f, 2.0f, -3.0f, 1e-30f};
  const auto c = nmhash::pack_signs(x, 2, 3);
  REQUIRE(c.bit(0, 0));
  REQUIRE(c.bit(0, 1));  // -0.0 == 0 -> +1
  REQUIRE_FALSE(c.bit(0, 2));
  REQUIRE(c.bit(1, 0));
  REQUIRE_FALSE(c.bit(1, 1));
  REQUIRE(c.bit(1, 2));
  const double bad[2] = {1.0, std::numeric_limits<double>::quiet_NaN()};
  REQUIRE_THROWS_WITH(nmhash::pack_signs(bad, 1, 2), Catch::Contains("NaN at row 0, bit 1"));
}

TEST_CASE("pack_pm1 round-trips and rejects values other than +-1", "[codes]") {
  std::mt19937_64 g(7);
  for (std::size_t k : {1, 64, 65, 200}) {
    const auto bits = ref::random_bits(5, k, g);
    std::vector<std::int8_t> pm(5 * k);
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 0; j < k; ++j) pm[i * k + j] = bits[i][j] ? 1 : -1;
    const auto c = nmhash::pack_pm1(pm.data(), 5, k);
    REQUIRE(c == ref::pack(bits, k));
    std::vector<std::int8_t> back(5 * k);
    nmhash::unpack_pm1(c, back.data());
    REQUIRE(back == pm);
  }
  const std::int8_t bad[3] = {1, 0, -1};
  REQUIRE_THROWS_WITH(nmhash::pack_pm1(bad, 1, 3), Catch::Contains("value 0 at row 0, bit 1"));
}

TEST_CASE("packed bytes follow numpy.packbits in both bit orders", "[codes]") {
  // Row bits 1,0,1,1,0,0,0,0, 1 (K = 9): packbits big -> [0xB0, 0x80],
  // little -> [0x0D, 0x01].
  const std::vector<std::vector<int>> row{{1, 0, 1, 1, 0, 0, 0, 0, 1}};
  const auto c = ref::pack(row, 9);
  std::uint8_t big[2], little[2];
  nmhash::to_packed_bytes(c, big, nmhash::bit_order::msb_first);
  nmhash::to_packed_bytes(c, little, nmhash::bit_order::lsb_first);
  REQUIRE(big[0] == 0xB0);
  REQUIRE(big[1] == 0x80);
  REQUIRE(little[0] == 0x0D);
  REQUIRE(little[1] == 0x01);
  REQUIRE(nmhash::from_packed_bytes(big, 1, 9, nmhash::bit_order::msb_first) == c);
  // The default order is FAISS's (lsb_first), in both directions.
  REQUIRE(nmhash::from_packed_bytes(little, 1, 9) == c);
  std::uint8_t by_default[2];
  nmhash::to_packed_bytes(c, by_default);
  REQUIRE(by_default[0] == little[0]);
  REQUIRE(by_default[1] == little[1]);
  // Padding bits in the input are ignored.
  const std::uint8_t padded[2] = {0x0D, 0xFF};
  REQUIRE(nmhash::from_packed_bytes(padded, 1, 9) == c);

  std::mt19937_64 g(3);
  for (std::size_t k : {1, 8, 63, 64, 65, 128, 200}) {
    const auto bits = ref::random_bits(7, k, g);
    const auto p = ref::pack(bits, k);
    for (auto order : {nmhash::bit_order::msb_first, nmhash::bit_order::lsb_first}) {
      std::vector<std::uint8_t> bytes(7 * nmhash::bytes_for_bits(k));
      nmhash::to_packed_bytes(p, bytes.data(), order);
      REQUIRE(nmhash::from_packed_bytes(bytes.data(), 7, k, order) == p);
      REQUIRE(nmhash::from_packed_bytes(bytes.data(), bytes.size(), 7, k, order) == p);
    }
  }
  // With a length, a buffer of the wrong size is an error naming both sizes.
  std::vector<std::uint8_t> five(5);
  REQUIRE_THROWS_WITH(nmhash::from_packed_bytes(five.data(), five.size(), 2, 24, nmhash::bit_order::lsb_first),
                      Catch::Contains("2 codes of K = 24 bits need 2 x 3 = 6 bytes, the buffer holds 5"));
  REQUIRE_THROWS_WITH(nmhash::from_packed_bytes(five.data(), five.size(), 1, 0, nmhash::bit_order::lsb_first),
                      Catch::Contains("code length K = 0"));
}

TEST_CASE("select_bits and drop_bits keep, drop and reorder bits", "[codes]") {
  std::mt19937_64 g(11);
  const std::size_t k = 130;
  const auto bits = ref::random_bits(9, k, g);
  const auto c = ref::pack(bits, k);
  const std::vector<std::size_t> pick{129, 0, 64, 63, 5};
  const auto s = nmhash::select_bits(c, pick);
  REQUIRE(s.bits() == pick.size());
  for (std::size_t i = 0; i < 9; ++i)
    for (std::size_t t = 0; t < pick.size(); ++t) REQUIRE(s.bit(i, t) == (bits[i][pick[t]] == 1));
  const auto d = nmhash::drop_bits(c, {3, 64, 129});
  REQUIRE(d.bits() == k - 3);
  for (std::size_t i = 0; i < 9; ++i) {
    std::size_t t = 0;
    for (std::size_t j = 0; j < k; ++j) {
      if (j == 3 || j == 64 || j == 129) continue;
      REQUIRE(d.bit(i, t) == (bits[i][j] == 1));
      ++t;
    }
  }
  REQUIRE_THROWS_WITH(nmhash::select_bits(c, {130}), Catch::Contains("out of range for K = 130"));
  REQUIRE_THROWS_WITH(nmhash::select_bits(c, {1, 1}), Catch::Contains("selected twice"));
  REQUIRE_THROWS_AS(nmhash::drop_bits(ref::pack({{1}}, 1), {0}), nmhash::error);
}

TEST_CASE("merge_majority votes, ties go to the group's first listed bit", "[codes]") {
  // Bits of one code: 1 0 0 1 1 1 0 0
  const auto c = ref::pack({{1, 0, 0, 1, 1, 1, 0, 0}}, 8);
  const auto m = nmhash::merge_majority(c, {{0, 1, 2}, {3, 4, 6}});
  REQUIRE(m.bits() == 2);
  REQUIRE_FALSE(m.bit(0, 0));  // 1,0,0 -> 0
  REQUIRE(m.bit(0, 1));        // 1,1,0 -> 1
  const auto t = nmhash::merge_majority(c, {{1, 0}, {5, 7}});
  REQUIRE_FALSE(t.bit(0, 0));  // tie, first listed is bit 1 = 0
  REQUIRE(t.bit(0, 1));        // tie, first listed is bit 5 = 1
  const auto t4 = nmhash::merge_majority(c, {{0, 3, 6, 2}, {7, 4, 5, 1}});
  REQUIRE(t4.bit(0, 0));        // tie 2:2, first listed is bit 0 = 1
  REQUIRE_FALSE(t4.bit(0, 1));  // tie 2:2, first listed is bit 7 = 0
  REQUIRE_THROWS_WITH(nmhash::merge_majority(c, {{0, 1}, {1, 2}}),
                      Catch::Contains("belongs to more than one group"));
  REQUIRE_THROWS_WITH(nmhash::merge_majority(c, {{}}), Catch::Contains("group 0 is empty"));

  // Random check against a direct count, across word boundaries.
  std::mt19937_64 g(5);
  const std::size_t k = 150;
  const auto bits = ref::random_bits(20, k, g);
  std::vector<std::vector<std::size_t>> groups;
  std::vector<std::size_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), g);
  for (std::size_t p = 0; p < k;) {
    const std::size_t sz = std::min<std::size_t>(1 + g() % 4, k - p);
    groups.emplace_back(perm.begin() + static_cast<long>(p), perm.begin() + static_cast<long>(p + sz));
    p += sz;
  }
  const auto merged = nmhash::merge_majority(ref::pack(bits, k), groups);
  for (std::size_t i = 0; i < 20; ++i)
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      int ones = 0;
      for (std::size_t b : groups[gi]) ones += bits[i][b];
      const int zeros = static_cast<int>(groups[gi].size()) - ones;
      const bool expect = ones != zeros ? ones > zeros : bits[i][groups[gi][0]] == 1;
      REQUIRE(merged.bit(i, gi) == expect);
    }
}

TEST_CASE("code spread counts distinct codes and the largest group", "[codes][spread]") {
  REQUIRE(nmhash::code_spread(packed_codes(0, 12)).distinct == 0);
  REQUIRE_FALSE(nmhash::code_spread(packed_codes(0, 12)).largest_share > 0);

  // 70 bits: two words per code, so codes that differ only in the second
  // word must count as distinct.
  packed_codes c(7, 70);
  c.set_bit(1, 65, true);
  c.set_bit(2, 65, true);
  c.set_bit(3, 3, true);
  c.set_bit(4, 3, true);
  c.set_bit(4, 65, true);
  c.set_bit(5, 65, true);
  // Rows: 0 {}, 6 {} | 1, 2, 5 {65} | 3 {3} | 4 {3, 65}.
  const auto s = nmhash::code_spread(c);
  REQUIRE(s.distinct == 4);
  REQUIRE(s.largest_share == Catch::Detail::Approx(3.0 / 7.0));
  REQUIRE(s.collapsed());        // fewer than 10 distinct codes
  REQUIRE_FALSE(s.collapsed(4, 0.5));
  REQUIRE(s.collapsed(4, 0.4));  // 3 of 7 share one code

  SECTION("against a brute-force count on random codes") {
    std::mt19937_64 gen(7);
    packed_codes r(500, 6);  // at most 64 distinct codes among 500
    for (std::size_t i = 0; i < r.size(); ++i)
      for (std::size_t j = 0; j < 6; ++j) r.set_bit(i, j, (gen() & 1u) != 0);
    std::size_t distinct = 0, top = 0;
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::size_t same = 0;
      bool first = true;
      for (std::size_t j = 0; j < r.size(); ++j)
        if (r.row(i)[0] == r.row(j)[0]) {
          ++same;
          if (j < i) first = false;
        }
      distinct += first ? 1 : 0;
      top = std::max(top, same);
    }
    const auto rs = nmhash::code_spread(r);
    REQUIRE(rs.distinct == distinct);
    REQUIRE(rs.largest_share == Catch::Detail::Approx(static_cast<double>(top) / 500.0));
  }
}
