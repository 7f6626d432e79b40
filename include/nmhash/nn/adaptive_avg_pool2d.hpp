// Adaptive average pooling: (N, C, H, W) to (N, C, OH, OW), output cell
// (i, j) the mean of input rows [floor(i H / OH), ceil((i + 1) H / OH)) and
// the like columns, as PyTorch's AdaptiveAvgPool2d((OH, OW)) (cells overlap
// or repeat where the output is larger than the input). (1, 1) is global
// average pooling, the pooling before a ResNet's classifier; (6, 6) and
// (7, 7) are AlexNet's and VGG's. Sums in double.
#pragma once

#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class adaptive_avg_pool2d : public layer<T> {
 public:
  explicit adaptive_avg_pool2d(std::size_t out_h = 1, std::size_t out_w = 1) : oh_(out_h), ow_(out_w) {
    require(oh_ >= 1 && ow_ >= 1, "adaptive_avg_pool2d: output size must be positive");
  }
  std::string name() const override {
    return "adaptive_avg_pool2d(" + std::to_string(oh_) + "x" + std::to_string(ow_) + ")";
  }
  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4, name(), ": input ", in.str(), " is not (N, C, H, W)");
    return shape4{in[0], in[1], oh_, ow_};
  }
  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    y.resize(output_shape(x.shape()));
    in_ = x.shape();
    for_each_cell([&](std::size_t out, std::size_t in0, std::size_t r1, std::size_t c1, double count) {
      double s = 0;
      for (std::size_t r = 0; r < r1; ++r)
        for (std::size_t c = 0; c < c1; ++c) s += static_cast<double>(x.data()[in0 + r * in_[3] + c]);
      y.data()[out] = static_cast<T>(s / count);
    });
  }
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(dy.shape() == output_shape(in_), name(), ": output gradient ", dy.shape().str(),
            " does not match the forward output");
    dx.resize(in_);
    dx.fill(T(0));
    for_each_cell([&](std::size_t out, std::size_t in0, std::size_t r1, std::size_t c1, double count) {
      const T g = static_cast<T>(static_cast<double>(dy.data()[out]) / count);
      for (std::size_t r = 0; r < r1; ++r)
        for (std::size_t c = 0; c < c1; ++c) dx.data()[in0 + r * in_[3] + c] += g;
    });
  }

 private:
  // f(output index, index of the cell's first input, its rows, its
  // columns, its size) for every output cell of every (sample, channel):
  // rows [floor(i H / OH), ceil((i + 1) H / OH)), columns likewise.
  template <class F>
  void for_each_cell(F&& f) const {
    const std::size_t H = in_[2], W = in_[3];
    for (std::size_t p = 0; p < in_[0] * in_[1]; ++p)
      for (std::size_t i = 0; i < oh_; ++i)
        for (std::size_t j = 0; j < ow_; ++j) {
          const std::size_t r0 = i * H / oh_, r1 = ((i + 1) * H + oh_ - 1) / oh_;
          const std::size_t c0 = j * W / ow_, c1 = ((j + 1) * W + ow_ - 1) / ow_;
          f((p * oh_ + i) * ow_ + j, (p * H + r0) * W + c0, r1 - r0, c1 - c0, static_cast<double>((r1 - r0) * (c1 - c0)));
        }
  }

  std::size_t oh_, ow_;
  shape4 in_{};
};

}  // namespace nmhash::nn
