// SGD with momentum and weight decay over flat buffers.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::optim {

// SGD with momentum and L2 weight decay, as torch.optim.SGD (dampening 0,
// no Nesterov): d = g + wd p; v = mu v + d; p -= lr v.
template <class T>
class sgd {
 public:
  sgd(double momentum, group_table groups) : mu_(momentum), groups_(std::move(groups)) {
    require(momentum >= 0.0 && momentum < 1.0, "sgd: momentum ", momentum, " outside [0, 1)");
  }
  void step(aligned_vector<T>& params, const aligned_vector<T>& grads,
            const std::vector<nn::parameter_range>& ranges) {
    require(params.size() == grads.size(), "sgd: ", params.size(), " parameters but ", grads.size(), " gradients");
    if (v_.size() != params.size()) v_.assign(params.size(), T(0));
    for (const auto& r : ranges) {
      const group_options& o = groups_[r.group];
      for (std::size_t i = r.offset; i < r.offset + r.count; ++i) {
        const double d = grads[i] + o.weight_decay * params[i];
        v_[i] = static_cast<T>(mu_ * v_[i] + d);
        params[i] = static_cast<T>(params[i] - o.lr * v_[i]);
      }
    }
  }
  // Named state buffers, for checkpoints.
  std::vector<std::pair<std::string, aligned_vector<T>*>> state() { return {{"momentum", &v_}}; }

 private:
  double mu_;
  group_table groups_;
  aligned_vector<T> v_;
};

}  // namespace nmhash::optim
