// Local response normalisation across channels (AlexNet / CNN-F), with
// PyTorch's definition: b_c = a_c / (k + alpha / size * sum of a_j^2 over
// the `size` channels centred on c, clipped at the edges)^beta.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class local_response_norm : public layer<T> {
 public:
  local_response_norm(std::size_t size, double alpha = 1e-4, double beta = 0.75, double k = 1.0)
      : size_(size), alpha_(alpha), beta_(beta), k_(k) {
    require(size >= 1, "local_response_norm: size must be positive");
  }
  std::string name() const override { return "local_response_norm(" + std::to_string(size_) + ")"; }
  std::size_t size() const { return size_; }
  double alpha() const { return alpha_; }
  double beta() const { return beta_; }
  double k() const { return k_; }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4, name(), ": input ", in.str(), " is not (N, C, H, W)");
    return in;
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    const shape4 s = output_shape(x.shape());
    y.resize(s);
    x_ = &x;
    scale_.resize(x.size());
    const std::size_t C = s[1], P = s[2] * s[3];
    parallel_for(static_cast<std::int64_t>(s[0]), threads{}, 1, [&](std::int64_t ni) {  // samples in parallel
      const auto n = static_cast<std::size_t>(ni);
      for (std::size_t c = 0; c < C; ++c) {
        const auto [lo, hi] = window(c, C);
        for (std::size_t p = 0; p < P; ++p) {
          double sum = 0;
          for (std::size_t j = lo; j <= hi; ++j) {
            const double a = x[(n * C + j) * P + p];
            sum += a * a;
          }
          const std::size_t i = (n * C + c) * P + p;
          scale_[i] = static_cast<T>(k_ + alpha_ / static_cast<double>(size_) * sum);
          y[i] = static_cast<T>(x[i] * std::pow(static_cast<double>(scale_[i]), -beta_));
        }
      }
    });
  }
  // dL/da_j = g_j s_j^-beta - 2 alpha beta / size * a_j * sum over the c
  // whose window holds j of g_c a_c s_c^(-beta - 1).
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr && dy.shape() == x_->shape(), name(),
            ": output gradient does not match the forward output");
    const shape4 s = x_->shape();
    dx.resize(s);
    const std::size_t C = s[1], P = s[2] * s[3];
    const double coef = 2.0 * alpha_ * beta_ / static_cast<double>(size_);
    parallel_for(static_cast<std::int64_t>(s[0]), threads{}, 1, [&](std::int64_t ni) {  // samples in parallel
      const auto n = static_cast<std::size_t>(ni);
      for (std::size_t i = n * C * P; i < (n + 1) * C * P; ++i)
        dx[i] = static_cast<T>(dy[i] * std::pow(static_cast<double>(scale_[i]), -beta_));
      for (std::size_t c = 0; c < C; ++c) {
        const auto [lo, hi] = window(c, C);
        for (std::size_t p = 0; p < P; ++p) {
          const std::size_t ic = (n * C + c) * P + p;
          const double t = coef * dy[ic] * (*x_)[ic] *
                           std::pow(static_cast<double>(scale_[ic]), -beta_ - 1.0);
          for (std::size_t j = lo; j <= hi; ++j) {
            const std::size_t ij = (n * C + j) * P + p;
            dx[ij] = static_cast<T>(dx[ij] - t * (*x_)[ij]);
          }
        }
      }
    });
  }

 private:
  // Channels [first, last] of the window centred on channel c.
  std::pair<std::size_t, std::size_t> window(std::size_t c, std::size_t C) const {
    return {c >= size_ / 2 ? c - size_ / 2 : 0, std::min(C - 1, c + (size_ - 1) / 2)};
  }

  std::size_t size_;
  double alpha_, beta_, k_;
  const tensor<T>* x_ = nullptr;
  aligned_vector<T> scale_;
};

}  // namespace nmhash::nn
