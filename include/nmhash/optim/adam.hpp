// Adam over flat buffers.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::optim {

// Adam as torch.optim.Adam (L2 weight decay added to the gradient), in the
// element type:
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
    using array = Eigen::Array<T, Eigen::Dynamic, 1>;
    for (const auto& r : ranges) {
      const group_options& o = groups_[r.group];
      const T b1 = static_cast<T>(b1_), b2 = static_cast<T>(b2_), wd = static_cast<T>(o.weight_decay),
              step = static_cast<T>(o.lr / c1), inv_c2 = static_cast<T>(1 / c2), eps = static_cast<T>(eps_);
      // Chunks of the range in parallel, each as vectorized array expressions.
      constexpr std::size_t chunk = 16384;
      parallel_for(static_cast<std::int64_t>((r.count + chunk - 1) / chunk), threads{}, 1, [&](std::int64_t ci) {
        const std::size_t lo = r.offset + static_cast<std::size_t>(ci) * chunk;
        const auto n = static_cast<Eigen::Index>(std::min(chunk, r.offset + r.count - lo));
        Eigen::Map<array> p(params.data() + lo, n), m(m_.data() + lo, n), v(v_.data() + lo, n);
        const auto g = Eigen::Map<const array>(grads.data() + lo, n) + wd * p;
        m = b1 * m + (T(1) - b1) * g;
        v = b2 * v + (T(1) - b2) * g.square();
        p -= step * m / ((v * inv_c2).sqrt() + eps);
      });
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
