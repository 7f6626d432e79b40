// 2-D max pooling over NCHW input (no padding; windows that would run past
// the edge are dropped, as PyTorch's default floor mode does). The gradient
// goes to the first maximum of each window.
#pragma once

#include <vector>

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class max_pool2d : public layer<T> {
 public:
  explicit max_pool2d(std::size_t kernel, std::size_t stride = 0)
      : k_(kernel), s_(stride ? stride : kernel) {
    require(k_ >= 1, "max_pool2d: kernel must be positive");
  }
  std::string name() const override {
    return "max_pool2d(" + std::to_string(k_) + ", stride " + std::to_string(s_) + ")";
  }
  std::size_t kernel() const { return k_; }
  std::size_t stride() const { return s_; }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4 && in[2] >= k_ && in[3] >= k_, name(), ": input ", in.str(),
            " is not (N, C, H, W) with H, W >= ", k_);
    return shape4{in[0], in[1], (in[2] - k_) / s_ + 1, (in[3] - k_) / s_ + 1};
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    const shape4 os = output_shape(x.shape());
    y.resize(os);
    in_ = x.shape();
    argmax_.resize(os.size());
    const std::size_t H = in_[2], W = in_[3], OH = os[2], OW = os[3];
    for (std::size_t p = 0; p < in_[0] * in_[1]; ++p) {
      const T* xp = x.data() + p * H * W;
      for (std::size_t oi = 0; oi < OH; ++oi)
        for (std::size_t oj = 0; oj < OW; ++oj) {
          std::size_t best = (oi * s_) * W + oj * s_;
          for (std::size_t a = 0; a < k_; ++a)
            for (std::size_t b = 0; b < k_; ++b) {
              const std::size_t idx = (oi * s_ + a) * W + oj * s_ + b;
              if (xp[idx] > xp[best]) best = idx;
            }
          const std::size_t o = (p * OH + oi) * OW + oj;
          y[o] = xp[best];
          argmax_[o] = p * H * W + best;
        }
    }
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.size() == argmax_.size(), name(), ": output gradient does not match the forward output");
    dx.resize(in_);
    dx.fill(T(0));
    for (std::size_t o = 0; o < argmax_.size(); ++o) dx[argmax_[o]] += dy[o];
  }

 private:
  std::size_t k_, s_;
  shape4 in_{};
  std::vector<std::size_t> argmax_;
};

}  // namespace nmhash::nn
