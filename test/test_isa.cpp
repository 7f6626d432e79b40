#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "isa/isa_probe.hpp"
#include "nmhash/core/cpu.hpp"

namespace {

// Restores the process-wide cap however the test ends.
struct isa_cap_guard {
  nmhash::isa saved = nmhash::isa::avx512;
  isa_cap_guard() {
    // The cap set by NMHASH_ISA (if any) is the one active_isa() reports
    // when the CPU supports more; keep it for the restore.
    saved = nmhash::active_isa() == nmhash::detected_isa() ? nmhash::isa::avx512 : nmhash::active_isa();
  }
  ~isa_cap_guard() { nmhash::set_isa_limit(saved); }
};

}  // namespace

TEST_CASE("every instruction-set level gives the same search, metric and leave-one-bit-out results",
          "[isa]") {
  isa_cap_guard guard;
  const nmhash::isa top = nmhash::detected_isa();
  INFO("this CPU supports up to " << nmhash::isa_name(top));
  nmhash::set_isa_limit(nmhash::isa::generic);
  REQUIRE(nmhash::active_isa() == nmhash::isa::generic);
  const auto reference = isa_probe();
  REQUIRE(!reference.ids.empty());
  REQUIRE(!reference.values.empty());
  for (int l = 1; l <= static_cast<int>(top); ++l) {
    const auto level = static_cast<nmhash::isa>(l);
    nmhash::set_isa_limit(level);
    REQUIRE(nmhash::active_isa() == level);
    INFO("level " << nmhash::isa_name(level));
    const auto got = isa_probe();
    REQUIRE(got.ids == reference.ids);
    REQUIRE(got.distances == reference.distances);
    REQUIRE(got.values == reference.values);
  }
  // A cap above the CPU's level is the CPU's level.
  nmhash::set_isa_limit(nmhash::isa::avx512);
  REQUIRE(nmhash::active_isa() == top);
  if (top < nmhash::isa::avx512)
    WARN("levels above " << nmhash::isa_name(top) << " are not executed on this CPU");
}

TEST_CASE("isa names parse back and a bad NMHASH_ISA value is named in the error", "[isa]") {
  for (int l = 0; l <= 3; ++l) {
    const auto level = static_cast<nmhash::isa>(l);
    REQUIRE(nmhash::detail::parse_isa(nmhash::isa_name(level), "x") == level);
  }
  REQUIRE_THROWS_WITH(nmhash::detail::parse_isa("sse9", "environment variable NMHASH_ISA"),
                      Catch::Contains("NMHASH_ISA") && Catch::Contains("generic, popcnt, avx2, avx512") &&
                          Catch::Contains("\"sse9\""));
}
