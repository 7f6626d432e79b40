// Rectified linear unit, elementwise: y = max(x, 0).
#pragma once

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class relu : public layer<T> {
 public:
  std::string name() const override { return "relu"; }
  shape4 output_shape(const shape4& in) const override { return in; }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    y.resize(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
    y_ = &y;
  }
  // The gradient at 0 is taken as 0.
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(y_ != nullptr && dy.shape() == y_->shape(), name(),
            ": output gradient does not match the forward output");
    dx.resize(dy.shape());
    for (std::size_t i = 0; i < dy.size(); ++i) dx[i] = (*y_)[i] > T(0) ? dy[i] : T(0);
  }

 private:
  const tensor<T>* y_ = nullptr;
};

}  // namespace nmhash::nn
