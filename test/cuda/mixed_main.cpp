// A .cpp translation unit using the CPU library, linked with .cu units that
// include the CUDA half. Exit 77 (reported as skipped) without a device.
#include <cstdio>

#include "device_part.hpp"
#include "nmhash/nmhash.hpp"

int main() {
  const float x[4] = {1, -1, 0, 2};
  const auto c = nmhash::pack_signs(x, 2, 2);
  if (!c.bit(0, 0) || c.bit(0, 1) || !c.bit(1, 0) || !c.bit(1, 1)) return 1;
  if (cuda_device_count() == 0) {
    std::printf("no CUDA device: device checks skipped\n");
    return 77;
  }
  std::string failure = run_device_checks();
  if (failure.empty()) failure = run_training_checks();
  if (!failure.empty()) {
    std::printf("FAILED: %s\n", failure.c_str());
    return 1;
  }
  std::printf("device results equal the CPU library\n");
  return 0;
}
