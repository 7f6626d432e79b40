// Device tags. The device a computation runs on is a template parameter
// (nmhash::cpu, nmhash::cuda); there is no run-time backend switch.
#pragma once

namespace nmhash {

struct cpu {
  static constexpr const char* name = "cpu";
};

struct cuda {
  static constexpr const char* name = "cuda";
};

}  // namespace nmhash
