// The memory bank of pairwise hashing losses: U holds the latest network
// output of every training image (rows start at zero), next to the labels
// of all training images, so a batch is compared with the whole training
// set (DPSH, ADSH, and the paper's Eq. (7) with j over the training set).
#pragma once

#include <cstddef>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/tensor.hpp"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash::loss {

template <class T>
class memory_bank {
 public:
  memory_bank(nmhash::labels train_labels, std::size_t bits)
      : labels_(std::move(train_labels)), bits_(bits), u_(labels_.size() * bits, T(0)) {
    require(bits >= 1, "memory_bank: code length must be positive");
  }

  std::size_t size() const { return labels_.size(); }
  std::size_t bits() const { return bits_; }
  const T* rows() const { return u_.data(); }
  T* rows() { return u_.data(); }
  const nmhash::labels& labels() const { return labels_; }

  // Stores the batch outputs u (B x K) as the rows of training images idx.
  void update(const tensor<T>& u, const std::vector<std::size_t>& idx) {
    check_batch(u, idx, "memory_bank::update");
    for (std::size_t b = 0; b < idx.size(); ++b)
      std::copy(u.data() + b * bits_, u.data() + (b + 1) * bits_, u_.data() + idx[b] * bits_);
  }

  // Whether training images a and b share a label.
  bool similar(std::size_t a, std::size_t b) const { return labels_.share(a, b); }

  void check_batch(const tensor<T>& u, const std::vector<std::size_t>& idx, const char* who) const {
    require(u.shape().rank() == 2 && u.shape()[1] == bits_, who, ": outputs ", u.shape().str(),
            " are not (B, ", bits_, ")");
    require(u.shape()[0] == idx.size(), who, ": ", u.shape()[0], " outputs but ", idx.size(),
            " training indices");
    for (std::size_t i : idx)
      require(i < size(), who, ": training index ", i, " outside the bank of ", size());
  }

 private:
  nmhash::labels labels_;
  std::size_t bits_;
  aligned_vector<T> u_;
};

}  // namespace nmhash::loss
