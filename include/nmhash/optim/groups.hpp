// Per-group hyper-parameters of the optimizers. Optimizers step over a
// model's flat parameter and gradient buffers, range by range, each range
// with the options of its group (the paper trains the backbone at lr 1e-4
// and the NMLayer at 1e-2). Their state (momentum, moments) is kept per
// element in flat buffers of the same layout.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::optim {

struct group_options {
  double lr = 1e-3;
  double weight_decay = 0.0;
};

// Hyper-parameters of each group id; ids without an entry use `fallback`.
struct group_table {
  std::vector<group_options> groups{};
  group_options fallback{};
  const group_options& operator[](int g) const {
    return g >= 0 && static_cast<std::size_t>(g) < groups.size() ? groups[static_cast<std::size_t>(g)]
                                                                  : fallback;
  }
};

// The optimizers a training run chooses from (adam.hpp, sgd.hpp,
// rmsprop.hpp); names as on the command line and in checkpoints.
enum class optimizer_kind { adam, sgd, rmsprop };

inline const char* to_string(optimizer_kind k) {
  return k == optimizer_kind::adam ? "adam" : k == optimizer_kind::sgd ? "sgd" : "rmsprop";
}

inline optimizer_kind parse_optimizer_kind(const std::string& s) {
  for (optimizer_kind k : {optimizer_kind::adam, optimizer_kind::sgd, optimizer_kind::rmsprop})
    if (s == to_string(k)) return k;
  nmhash::detail::fail("optimizer '", s, "' is not one of adam, sgd, rmsprop");
}

}  // namespace nmhash::optim
