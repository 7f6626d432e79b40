// Adam over flat buffers.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::optim {

// Adam as torch.optim.Adam (L2 weight decay added to the gradient):
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
template <class T>
class adam {
 public:
  explicit adam(group_table groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : groups_(std::move(groups)), b1_(beta1), b2_(beta2), eps_(eps) {}
  void step(aligned_vector<T>& params, const aligned_vector<T>& grads,
            const std::vector<nn::parameter_range>& ranges) {
    require(params.size() == grads.size(), "adam: ", params.size(), " parameters but ", grads.size(), " gradients");
    if (m_.size() != params.size()) {
      m_.assign(params.size(), T(0));
      v_.assign(params.size(), T(0));
    }
    ++t_;
    const double c1 = 1 - std::pow(b1_, static_cast<double>(t_));
    const double c2 = 1 - std::pow(b2_, static_cast<double>(t_));
    for (const auto& r : ranges) {
      const group_options& o = groups_[r.group];
      for (std::size_t i = r.offset; i < r.offset + r.count; ++i) {
        const double g = grads[i] + o.weight_decay * params[i];
        m_[i] = static_cast<T>(b1_ * m_[i] + (1 - b1_) * g);
        v_[i] = static_cast<T>(b2_ * v_[i] + (1 - b2_) * g * g);
        params[i] = static_cast<T>(params[i] - o.lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps_));
      }
    }
  }
  std::size_t steps() const { return t_; }
  // Restores the step count with the moments (checkpoints).
  void set_steps(std::size_t t) { t_ = t; }
  std::vector<std::pair<std::string, aligned_vector<T>*>> state() {
    return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}};
  }

 private:
  group_table groups_;
  double b1_, b2_, eps_;
  aligned_vector<T> m_, v_;
  std::size_t t_ = 0;
};

}  // namespace nmhash::optim
