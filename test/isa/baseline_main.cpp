// Run under an emulated CPU (qemu-x86_64 -cpu Nehalem: POPCNT, no AVX;
// -cpu qemu64: no POPCNT) by ctest: a program built without -m flags (with
// the default-flags probe unit of nmhash_isa_mixed) runs there, detects the
// level the CPU has, and gives at that level what it gives at the generic
// level. Prints the detected level, which the test checks.
#include <cstdio>

#include "mixed.hpp"
#include "nmhash/core/cpu.hpp"

int main() {
  const nmhash::isa top = nmhash::detected_isa();
  std::printf("detected level: %s\n", nmhash::isa_name(top));
  const auto at_top = probe_baseline_tu();
  nmhash::set_isa_limit(nmhash::isa::generic);
  const auto generic = probe_baseline_tu();
  const bool ok = at_top.ids == generic.ids && at_top.distances == generic.distances &&
                  at_top.values == generic.values && !generic.ids.empty();
  std::printf("%s\n", ok ? "same results at every level" : "FAIL: results differ");
  return ok ? 0 : 1;
}
