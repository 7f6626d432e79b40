// Batch normalisation over the channels of (N, C, H, W) inputs (or (N, C):
// BatchNorm1d), as PyTorch's nn.BatchNorm2d with its defaults (eps 1e-5,
// momentum 0.1, affine, running statistics tracked):
//   training:   y = (x - mean_b) / sqrt(var_b + eps) * weight + bias, with
//               the batch's mean and biased variance per channel; then
//               running_mean += 0.1 (mean_b - running_mean) and
//               running_var  += 0.1 (var_b n / (n - 1) - running_var),
//               n = N H W (the unbiased variance, as PyTorch)
//   evaluation: the running statistics in place of the batch's.
// Parameters "weight" (ones) and "bias" (zeros); buffers "running_mean"
// (zeros) and "running_var" (ones), saved and loaded with the parameters
// (PyTorch's state_dict names; its num_batches_tracked counter is not kept:
// it only matters with momentum None). Per-channel sums are taken in a
// fixed order in double precision: the same bits on any thread count.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class batch_norm2d : public layer<T> {
 public:
  explicit batch_norm2d(std::size_t channels, double eps = 1e-5, double momentum = 0.1)
      : c_(channels), eps_(eps), momentum_(momentum), running_mean_(channels, T(0)), running_var_(channels, T(1)) {
    require(channels >= 1, "batch_norm2d: channels must be positive");
    require(eps > 0 && momentum >= 0 && momentum <= 1, "batch_norm2d: eps must be positive and momentum in [0, 1], got ",
            eps, " and ", momentum);
  }

  std::string name() const override { return "batch_norm2d(" + std::to_string(c_) + ")"; }
  std::size_t channels() const { return c_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() >= 2 && in[1] == c_, name(), ": input ", in.str(), " has ", in.rank() >= 2 ? in[1] : 0,
            " channels, expected ", c_);
    return in;
  }
  std::size_t parameter_count() const override { return 2 * c_; }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    return {{"weight", {c_}}, {"bias", {c_}}};
  }
  std::vector<std::pair<std::string, aligned_vector<T>*>> buffers() override {
    return {{"running_mean", &running_mean_}, {"running_var", &running_var_}};
  }
  void bind(T* params, T* grads) override {
    w_ = params;
    b_ = params + c_;
    dw_ = grads;
    db_ = grads + c_;
  }
  void initialize(std::mt19937_64&) override {
    for (std::size_t c = 0; c < c_; ++c) {
      w_[c] = T(1);
      b_[c] = T(0);
      running_mean_[c] = T(0);
      running_var_[c] = T(1);
    }
  }

  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    const shape4 s = output_shape(x.shape());
    y.resize(s);
    x_ = &x;
    training_ = training;
    const std::size_t n = s[0], hw = s.row_size() / c_, count = n * hw;
    require(!training || count >= 2, name(), ": training needs more than one value per channel, got input ", s.str());
    mean_.resize(c_);
    invstd_.resize(c_);
    xhat_.resize(s);
    parallel_for(static_cast<std::int64_t>(c_), threads{}, 1, [&](std::int64_t ci) {
      const auto c = static_cast<std::size_t>(ci);
      double mean, var;
      if (training) {
        const T* xd = x.data();
        mean = channel_sum(n, hw, c, [xd](std::size_t k) { return static_cast<double>(xd[k]); }) /
               static_cast<double>(count);
        const double sq = channel_sum(n, hw, c, [xd, mean](std::size_t k) {
          const double d = static_cast<double>(xd[k]) - mean;
          return d * d;
        });
        var = sq / static_cast<double>(count);
        const double unbiased = sq / static_cast<double>(count - 1);
        running_mean_[c] = static_cast<T>((1 - momentum_) * static_cast<double>(running_mean_[c]) + momentum_ * mean);
        running_var_[c] = static_cast<T>((1 - momentum_) * static_cast<double>(running_var_[c]) + momentum_ * unbiased);
      } else {
        mean = static_cast<double>(running_mean_[c]);
        var = static_cast<double>(running_var_[c]);
      }
      const double inv = 1.0 / std::sqrt(var + eps_);
      mean_[c] = mean;
      invstd_[c] = inv;
      const double w = static_cast<double>(w_[c]), b = static_cast<double>(b_[c]);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t off = (i * c_ + c) * hw;
        for (std::size_t j = 0; j < hw; ++j) {
          const double h = (static_cast<double>(x.data()[off + j]) - mean) * inv;
          xhat_.data()[off + j] = static_cast<T>(h);
          y.data()[off + j] = static_cast<T>(h * w + b);
        }
      }
    });
  }

  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr, name(), ": backward() before forward()");
    const shape4 s = x_->shape();
    require(dy.shape() == s, name(), ": output gradient ", dy.shape().str(), " does not match the forward output");
    const std::size_t n = s[0], hw = s.row_size() / c_, count = n * hw;
    dx.resize(s);
    const bool want_dx = this->input_gradient();
    parallel_for(static_cast<std::int64_t>(c_), threads{}, 1, [&](std::int64_t ci) {
      const auto c = static_cast<std::size_t>(ci);
      const T *g = dy.data(), *h = xhat_.data();
      const double sum_dy = channel_sum(n, hw, c, [g](std::size_t k) { return static_cast<double>(g[k]); });
      const double sum_dy_xhat = channel_sum(
          n, hw, c, [g, h](std::size_t k) { return static_cast<double>(g[k]) * static_cast<double>(h[k]); });
      dw_[c] += static_cast<T>(sum_dy_xhat);
      db_[c] += static_cast<T>(sum_dy);
      if (!want_dx) return;
      const double scale = static_cast<double>(w_[c]) * invstd_[c];
      const double m_dy = sum_dy / static_cast<double>(count), m_dy_xhat = sum_dy_xhat / static_cast<double>(count);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t off = (i * c_ + c) * hw;
        for (std::size_t j = 0; j < hw; ++j) {
          const double g = static_cast<double>(dy.data()[off + j]);
          // Training: the batch statistics depend on x; evaluation: constants.
          const double d = training_ ? g - m_dy - static_cast<double>(xhat_.data()[off + j]) * m_dy_xhat : g;
          dx.data()[off + j] = static_cast<T>(scale * d);
        }
      }
    });
  }

 private:
  // The sum of f(k) over channel c's entries k, in kLanes double
  // accumulators added in a fixed order: vectorized, and the same bits on
  // every thread count.
  template <class F>
  double channel_sum(std::size_t n, std::size_t hw, std::size_t c, F f) const {
    constexpr std::size_t kLanes = 8;
    double acc[kLanes] = {};
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t off = (i * c_ + c) * hw;
      std::size_t j = 0;
      for (; j + kLanes <= hw; j += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l) acc[l] += f(off + j + l);
      for (; j < hw; ++j) acc[j % kLanes] += f(off + j);
    }
    double sum = 0;
    for (double a : acc) sum += a;
    return sum;
  }

  std::size_t c_;
  double eps_, momentum_;
  aligned_vector<T> running_mean_, running_var_;
  T *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  const tensor<T>* x_ = nullptr;
  bool training_ = false;
  std::vector<double> mean_, invstd_;
  tensor<T> xhat_;
};

}  // namespace nmhash::nn
