// Links a translation unit built with the default flags and one built with
// -mavx2 (mixed_tu.cpp twice) and runs both at every instruction-set level
// the CPU has: nmhash's definitions must not depend on the flags, so both
// give the results of the default unit at the generic level. Exit status
// 77 (skipped) on a CPU without AVX2, where the -mavx2 unit cannot run.
#include <cstdio>
#include <cstdlib>

#include "mixed.hpp"
#include "nmhash/core/cpu.hpp"

namespace {

bool same(const isa_probe_result_public& a, const isa_probe_result_public& b) {
  return a.ids == b.ids && a.distances == b.distances && a.values == b.values;
}

}  // namespace

int main() {
  if (nmhash::detected_isa() < nmhash::isa::avx2) {
    std::printf("skipped: this CPU has no AVX2 (detected level %s)\n", nmhash::isa_name(nmhash::detected_isa()));
    return 77;
  }
  nmhash::set_isa_limit(nmhash::isa::generic);
  const auto reference = probe_baseline_tu();
  if (reference.ids.empty() || reference.values.empty()) {
    std::printf("FAIL: empty probe\n");
    return 1;
  }
  int failures = 0;
  for (int l = 0; l <= static_cast<int>(nmhash::detected_isa()); ++l) {
    nmhash::set_isa_limit(static_cast<nmhash::isa>(l));
    const bool a = same(probe_baseline_tu(), reference);
    const bool b = same(probe_avx2_tu(), reference);
    std::printf("level %-7s default-flags unit %s, -mavx2 unit %s\n", nmhash::isa_name(nmhash::active_isa()),
                a ? "same" : "DIFFERS", b ? "same" : "DIFFERS");
    failures += !a + !b;
  }
  return failures == 0 ? 0 : 1;
}
