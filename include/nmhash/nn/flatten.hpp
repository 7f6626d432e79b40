// Flatten: (N, C, H, W) -> (N, C H W), data unchanged.
#pragma once

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class flatten : public layer<T> {
 public:
  std::string name() const override { return "flatten"; }
  shape4 output_shape(const shape4& in) const override { return shape4{in[0], in.row_size()}; }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    in_ = x.shape();
    y.resize(output_shape(in_));
    std::copy(x.data(), x.data() + x.size(), y.data());
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.size() == in_.size(), name(), ": output gradient does not match the forward output");
    dx.resize(in_);
    std::copy(dy.data(), dy.data() + dy.size(), dx.data());
  }

 private:
  shape4 in_{};
};

}  // namespace nmhash::nn
