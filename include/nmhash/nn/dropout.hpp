// Inverted dropout: in training each element is zeroed with probability p
// and the survivors scaled by 1 / (1 - p); in evaluation the identity. The
// masks come from the layer's own seeded generator.
#pragma once

#include <random>
#include <vector>

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class dropout : public layer<T> {
 public:
  explicit dropout(double p, std::uint64_t seed = 0) : p_(p), gen_(seed) {
    require(p >= 0.0 && p < 1.0, "dropout: probability ", p, " outside [0, 1)");
  }
  std::string name() const override { return "dropout(" + std::to_string(p_) + ")"; }
  shape4 output_shape(const shape4& in) const override { return in; }
  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    y.resize(x.shape());
    draw(x.size(), training);
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale_[i];
  }
  // The factors of the next forward pass over n elements, drawn from the
  // layer's generator as forward() draws them (ones in evaluation): the
  // device twin multiplies by them, so both see the same masks.
  const aligned_vector<T>& draw(std::size_t n, bool training) {
    scale_.assign(n, T(1));
    if (training && p_ > 0.0) {
      std::bernoulli_distribution keep(1.0 - p_);
      const T s = static_cast<T>(1.0 / (1.0 - p_));
      for (auto& m : scale_) m = keep(gen_) ? s : T(0);
    }
    return scale_;
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.size() == scale_.size(), name(), ": output gradient does not match the forward output");
    dx.resize(dy.shape());
    for (std::size_t i = 0; i < dy.size(); ++i) dx[i] = dy[i] * scale_[i];
  }

 private:
  double p_;
  std::mt19937_64 gen_;
  aligned_vector<T> scale_;
};

}  // namespace nmhash::nn
