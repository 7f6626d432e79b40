// Global average pooling: (N, C, H, W) to (N, C, 1, 1), the mean of each
// channel's H x W values (PyTorch's AdaptiveAvgPool2d((1, 1)), the pooling
// before a ResNet's classifier). Sums in double.
#pragma once

#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class global_avg_pool2d : public layer<T> {
 public:
  std::string name() const override { return "global_avg_pool2d"; }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4, name(), ": input ", in.str(), " is not (N, C, H, W)");
    return shape4{in[0], in[1], 1, 1};
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    y.resize(output_shape(x.shape()));
    in_ = x.shape();
    const std::size_t hw = in_[2] * in_[3];
    for (std::size_t p = 0; p < in_[0] * in_[1]; ++p) {
      double s = 0;
      for (std::size_t j = 0; j < hw; ++j) s += static_cast<double>(x.data()[p * hw + j]);
      y.data()[p] = static_cast<T>(s / static_cast<double>(hw));
    }
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.shape() == output_shape(in_), name(), ": output gradient ", dy.shape().str(),
            " does not match the forward output");
    dx.resize(in_);
    const std::size_t hw = in_[2] * in_[3];
    for (std::size_t p = 0; p < in_[0] * in_[1]; ++p) {
      const T g = static_cast<T>(static_cast<double>(dy.data()[p]) / static_cast<double>(hw));
      for (std::size_t j = 0; j < hw; ++j) dx.data()[p * hw + j] = g;
    }
  }

 private:
  shape4 in_{};
};

}  // namespace nmhash::nn
