// 2-D max pooling over NCHW input, with implicit padding of -infinity on
// every side (at most half the kernel, as PyTorch requires); windows that
// would run past the padded edge are dropped, as PyTorch's default floor
// mode does. The gradient goes to the first maximum of each window.
#pragma once

#include <algorithm>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class max_pool2d : public layer<T> {
 public:
  explicit max_pool2d(std::size_t kernel, std::size_t stride = 0, std::size_t padding = 0)
      : k_(kernel), s_(stride ? stride : kernel), p_(padding) {
    require(k_ >= 1, "max_pool2d: kernel must be positive");
    require(2 * p_ <= k_, "max_pool2d: padding ", p_, " exceeds half the kernel ", k_);
  }
  std::string name() const override {
    return "max_pool2d(" + std::to_string(k_) + ", stride " + std::to_string(s_) +
           (p_ ? ", padding " + std::to_string(p_) : std::string()) + ")";
  }
  std::size_t kernel() const { return k_; }
  std::size_t stride() const { return s_; }
  std::size_t padding() const { return p_; }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4 && in[2] + 2 * p_ >= k_ && in[3] + 2 * p_ >= k_, name(), ": input ", in.str(),
            " is not (N, C, H, W) with H, W >= ", k_ - 2 * p_);
    return shape4{in[0], in[1], (in[2] + 2 * p_ - k_) / s_ + 1, (in[3] + 2 * p_ - k_) / s_ + 1};
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    const shape4 os = output_shape(x.shape());
    y.resize(os);
    in_ = x.shape();
    argmax_.resize(os.size());
    const std::size_t H = in_[2], W = in_[3], OH = os[2], OW = os[3];
    // Planes in parallel: each writes its own outputs only.
    parallel_for(static_cast<std::int64_t>(in_[0] * in_[1]), threads{}, 1, [&](std::int64_t pi) {
      const auto p = static_cast<std::size_t>(pi);
      const T* xp = x.data() + p * H * W;
      for (std::size_t oi = 0; oi < OH; ++oi)
        for (std::size_t oj = 0; oj < OW; ++oj) {
          // The window's rows and columns inside the input (never empty:
          // the padding is at most half the kernel).
          const std::size_t i0 = oi * s_ >= p_ ? oi * s_ - p_ : 0, i1 = std::min(H, oi * s_ + k_ - p_);
          const std::size_t j0 = oj * s_ >= p_ ? oj * s_ - p_ : 0, j1 = std::min(W, oj * s_ + k_ - p_);
          std::size_t best = i0 * W + j0;
          for (std::size_t i = i0; i < i1; ++i)
            for (std::size_t j = j0; j < j1; ++j) {
              const std::size_t idx = i * W + j;
              if (xp[idx] > xp[best]) best = idx;
            }
          const std::size_t o = (p * OH + oi) * OW + oj;
          y[o] = xp[best];
          argmax_[o] = p * H * W + best;
        }
    });
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.size() == argmax_.size(), name(), ": output gradient does not match the forward output");
    dx.resize(in_);
    // A plane's window maxima lie in that plane: planes in parallel, each
    // adding in output order.
    const std::size_t planes = in_[0] * in_[1], per_plane = argmax_.size() / planes, plane_in = in_[2] * in_[3];
    parallel_for(static_cast<std::int64_t>(planes), threads{}, 1, [&](std::int64_t pi) {
      const auto p = static_cast<std::size_t>(pi);
      std::fill_n(dx.data() + p * plane_in, plane_in, T(0));
      for (std::size_t o = p * per_plane; o < (p + 1) * per_plane; ++o) dx[argmax_[o]] += dy[o];
    });
  }

 private:
  std::size_t k_, s_, p_;
  shape4 in_{};
  std::vector<std::size_t> argmax_;
};

}  // namespace nmhash::nn
