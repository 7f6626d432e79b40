// Rectified linear unit, elementwise: y = max(x, 0).
#pragma once

#include <Eigen/Core>

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class relu : public layer<T> {
 public:
  std::string name() const override { return "relu"; }
  shape4 output_shape(const shape4& in) const override { return in; }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    y.resize(x.shape());
    const auto n = static_cast<Eigen::Index>(x.size());
    array(y.data(), n) = carray(x.data(), n).max(T(0));
    y_ = &y;
  }
  // The gradient at 0 is taken as 0.
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(y_ != nullptr && dy.shape() == y_->shape(), name(),
            ": output gradient does not match the forward output");
    dx.resize(dy.shape());
    const auto n = static_cast<Eigen::Index>(dy.size());
    array(dx.data(), n) = (carray(y_->data(), n) > T(0)).select(carray(dy.data(), n), T(0));
  }

 private:
  using array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using carray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const tensor<T>* y_ = nullptr;
};

}  // namespace nmhash::nn
