// RMSprop over flat buffers.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::optim {

// RMSprop as torch.optim.RMSprop (no momentum, not centred):
// s = a s + (1 - a) g^2; p -= lr g / (sqrt(s) + eps).
template <class T>
class rmsprop {
 public:
  explicit rmsprop(group_table groups, double alpha = 0.99, double eps = 1e-8)
      : groups_(std::move(groups)), alpha_(alpha), eps_(eps) {}
  void step(aligned_vector<T>& params, const aligned_vector<T>& grads,
            const std::vector<nn::parameter_range>& ranges) {
    require(params.size() == grads.size(), "rmsprop: ", params.size(), " parameters but ", grads.size(), " gradients");
    if (s_.size() != params.size()) s_.assign(params.size(), T(0));
    for (const auto& r : ranges) {
      const group_options& o = groups_[r.group];
      for (std::size_t i = r.offset; i < r.offset + r.count; ++i) {
        const double g = grads[i] + o.weight_decay * params[i];
        s_[i] = static_cast<T>(alpha_ * s_[i] + (1 - alpha_) * g * g);
        params[i] = static_cast<T>(params[i] - o.lr * g / (std::sqrt(static_cast<double>(s_[i])) + eps_));
      }
    }
  }
  std::vector<std::pair<std::string, aligned_vector<T>*>> state() { return {{"square_avg", &s_}}; }

 private:
  group_table groups_;
  double alpha_, eps_;
  aligned_vector<T> s_;
};

}  // namespace nmhash::optim
