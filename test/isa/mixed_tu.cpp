// Built twice into nmhash_isa_mixed: once with the project's flags and once
// with -mavx2 -mbmi2 -mfma (test/CMakeLists.txt), each time with its own
// NMHASH_MIXED_PROBE name.
#include "isa_probe.hpp"
#include "mixed.hpp"

#ifndef NMHASH_MIXED_PROBE
#error "define NMHASH_MIXED_PROBE"
#endif

isa_probe_result_public NMHASH_MIXED_PROBE() {
  const auto r = isa_probe();
  return {r.ids, r.distances, r.values};
}
