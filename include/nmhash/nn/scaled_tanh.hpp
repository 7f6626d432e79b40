// y = tanh(beta x): HashNet's continuation activation. beta starts at 1 and
// grows on a schedule (hashnet_beta) until tanh(beta x) approaches sgn(x).
#pragma once

#include <cmath>
#include <string>

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class scaled_tanh : public layer<T> {
 public:
  explicit scaled_tanh(double beta = 1.0) { set_beta(beta); }
  std::string name() const override { return "scaled_tanh(" + std::to_string(beta_) + ")"; }
  shape4 output_shape(const shape4& in) const override { return in; }
  double beta() const { return beta_; }
  void set_beta(double beta) {
    require(beta > 0 && std::isfinite(beta), "scaled_tanh: beta must be positive and finite, got ", beta);
    beta_ = beta;
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool /*training*/) override {
    y.resize(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = static_cast<T>(std::tanh(beta_ * x[i]));
    y_ = y;
  }
  // dy/dx = beta (1 - y^2)
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.size() == y_.size(), name(), ": output gradient does not match the forward output");
    dx.resize(dy.shape());
    for (std::size_t i = 0; i < dy.size(); ++i)
      dx[i] = static_cast<T>(dy[i] * beta_ * (1.0 - static_cast<double>(y_[i]) * y_[i]));
  }

 private:
  double beta_ = 1.0;
  tensor<T> y_;
};

// HashNet's continuation schedule (the authors' code): beta = (1 + gamma
// t)^power with t the iteration count rounded down to a multiple of `step`
// (gamma 0.005, power 0.5, step 200).
inline double hashnet_beta(std::size_t iteration, double gamma = 0.005, double power = 0.5, std::size_t step = 200) {
  const double t = static_cast<double>(iteration / step * step);
  return std::pow(1.0 + gamma * t, power);
}

}  // namespace nmhash::nn
