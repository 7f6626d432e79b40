// Data sets by name, as the tools take them (--dataset):
//   fmnist-dpsh        Fashion-MNIST with the fmnist-dpsh protocol
//                      (shared/protocol.md), from the Fashion-MNIST folder
//   fmnist-dpsh:DIR    the same from DIR
//   cifar10:DIR        CIFAR-10's binary batches in DIR, DPSH split
//   list:DIR           an image-list folder (train.txt, database.txt,
//                      test.txt; data/image_list.hpp)
#pragma once

#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/data/cifar10.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"
#include "nmhash/data/image_list.hpp"

namespace nmhash::data {

struct dataset_options {
  std::string fashion_mnist_dir = default_fashion_mnist_dir;  // for plain "fmnist-dpsh"
  image_list_options list;                                    // for list:DIR
};

// The kind of a dataset spec: "fmnist-dpsh", "cifar10" or "list".
inline std::string dataset_kind(const std::string& spec) {
  if (spec == "fmnist-dpsh" || spec.rfind("fmnist-dpsh:", 0) == 0) return "fmnist-dpsh";
  if (spec.rfind("cifar10:", 0) == 0) return "cifar10";
  if (spec.rfind("list:", 0) == 0) return "list";
  nmhash::detail::fail("data set '", spec, "': expected fmnist-dpsh, fmnist-dpsh:DIR, cifar10:DIR or list:DIR");
}

inline retrieval_split open_dataset(const std::string& spec, const dataset_options& o = {}) {
  const std::string kind = dataset_kind(spec);
  const auto colon = spec.find(':');
  const std::string dir = colon == std::string::npos ? "" : spec.substr(colon + 1);
  require(colon == std::string::npos || !dir.empty(), "data set '", spec, "': the folder after ':' is empty");
  if (kind == "fmnist-dpsh") {
    retrieval_split r = fmnist_dpsh(dir.empty() ? o.fashion_mnist_dir : dir);
    return r;
  }
  if (kind == "cifar10") return cifar10_dpsh(dir);
  return image_list_dataset(dir, o.list);
}

}  // namespace nmhash::data
