// The hashing losses by name, the one table the trainers select from:
// dpsh, eq7 (the NMLayer paper's Eq. (7)), dhn, hashnet and dsh, each as a
// function of the batch outputs u (B x K), the batch's training indices and
// the memory bank, returning the loss and writing dL/du.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/loss/dhn.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/dsh.hpp"
#include "nmhash/loss/hashnet.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"

namespace nmhash::loss {

struct loss_settings {
  double alpha = 0.1;                            // quantization weight of dpsh, dhn (lambda) and dsh
  double eta = 1200;                             // eq7's quantization weight
  double hashnet_alpha = hashnet_defaults::alpha;  // HashNet's sigmoid scale
  double margin = 0;                             // dsh; 0: 2 K of the bank's current code length
};

template <class T>
using loss_fn = std::function<double(const tensor<T>& u, const std::vector<std::size_t>& idx,
                                     const memory_bank<T>& bank, tensor<T>& du)>;

inline const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names = {"dpsh", "eq7", "dhn", "hashnet", "dsh"};
  return names;
}

// The loss `name` with settings s; an unknown name throws, listing the
// known ones.
template <class T>
loss_fn<T> loss_by_name(const std::string& name, const loss_settings& s) {
  if (name == "dpsh")
    return [s](const auto& u, const auto& idx, const auto& bank, auto& du) { return dpsh(u, idx, bank, s.alpha, du); };
  if (name == "eq7")
    return [s](const auto& u, const auto& idx, const auto& bank, auto& du) { return pairwise_eq7(u, idx, bank, s.eta, du); };
  if (name == "dhn")
    return [s](const auto& u, const auto& idx, const auto& bank, auto& du) { return dhn(u, idx, bank, s.alpha, du); };
  if (name == "hashnet")
    return [s](const auto& u, const auto& idx, const auto& bank, auto& du) {
      return hashnet(u, idx, bank, s.hashnet_alpha, du);
    };
  if (name == "dsh")
    return [s](const auto& u, const auto& idx, const auto& bank, auto& du) {
      const double margin = s.margin > 0 ? s.margin : 2.0 * static_cast<double>(bank.bits());
      return dsh(u, idx, bank, margin, s.alpha, du);
    };
  std::string known;
  for (const auto& n : loss_names()) known += (known.empty() ? "" : ", ") + n;
  nmhash::detail::fail("unknown hashing loss '", name, "' (known: ", known, ")");
}

}  // namespace nmhash::loss
