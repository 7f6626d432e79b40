#pragma once

#include <cstdint>
#include <vector>

struct isa_probe_result_public {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> distances;
  std::vector<double> values;
};

isa_probe_result_public probe_baseline_tu();
isa_probe_result_public probe_avx2_tu();
