// ResNet's basic block (torchvision.models.resnet.BasicBlock, expansion 1):
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
// conv1: 3 x 3, stride S, padding 1; conv2: 3 x 3, padding 1; both without
// bias. The shortcut is x itself, or, when the stride is not 1 or the
// channels change, the downsample path: a 1 x 1 convolution of stride S
// without bias and a batch norm. Parameters and buffers carry
// torchvision's names ("conv1.weight", "bn1.weight", "bn1.running_mean",
// ..., "downsample.0.weight", "downsample.1.bias"), so a block's state
// moves to and from PyTorch as it is.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/nn/batch_norm2d.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class basic_block : public layer<T> {
 public:
  basic_block(std::size_t in_channels, std::size_t planes, std::size_t stride = 1)
      : in_(in_channels),
        planes_(planes),
        stride_(stride),
        conv1_(in_channels, planes, conv2d_options{3, 3, stride, 1, false}),
        bn1_(planes),
        conv2_(planes, planes, conv2d_options{3, 3, 1, 1, false}),
        bn2_(planes) {
    if (stride != 1 || in_channels != planes) {
      down_conv_ = std::make_unique<conv2d<T>>(in_channels, planes, conv2d_options{1, 1, stride, 0, false});
      down_bn_ = std::make_unique<batch_norm2d<T>>(planes);
    }
  }

  std::string name() const override {
    return "basic_block(" + std::to_string(in_) + " -> " + std::to_string(planes_) + ", stride " +
           std::to_string(stride_) + ")";
  }
  shape4 output_shape(const shape4& in) const override { return conv2_.output_shape(conv1_.output_shape(in)); }

  std::size_t parameter_count() const override {
    std::size_t n = 0;
    for (const layer<T>* l : parts()) n += l->parameter_count();
    return n;
  }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    std::vector<std::pair<std::string, std::vector<std::size_t>>> out;
    const auto names = part_names();
    const auto ls = parts();
    for (std::size_t i = 0; i < ls.size(); ++i)
      for (auto [n, s] : ls[i]->parameter_layout()) out.emplace_back(names[i] + "." + n, std::move(s));
    return out;
  }
  std::vector<std::pair<std::string, aligned_vector<T>*>> buffers() override {
    std::vector<std::pair<std::string, aligned_vector<T>*>> out;
    const auto names = part_names();
    auto ls = parts();
    for (std::size_t i = 0; i < ls.size(); ++i)
      for (auto [n, b] : ls[i]->buffers()) out.emplace_back(names[i] + "." + n, b);
    return out;
  }
  void bind(T* params, T* grads) override {
    for (layer<T>* l : parts()) {
      l->bind(params, grads);
      params += l->parameter_count();
      grads += l->parameter_count();
    }
  }
  void initialize(std::mt19937_64& gen) override {
    for (layer<T>* l : parts()) l->initialize(gen);
  }

  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    x_ = &x;
    conv1_.forward(x, h1_, training);
    bn1_.forward(h1_, h2_, training);
    relu(h2_, h3_);
    conv2_.forward(h3_, h4_, training);
    bn2_.forward(h4_, h5_, training);
    const tensor<T>* shortcut = &x;
    if (down_conv_) {
      down_conv_->forward(x, d1_, training);
      down_bn_->forward(d1_, d2_, training);
      shortcut = &d2_;
    }
    sum_.resize(h5_.shape());
    y.resize(h5_.shape());
    for (std::size_t i = 0; i < sum_.size(); ++i) {
      sum_.data()[i] = h5_.data()[i] + shortcut->data()[i];
      y.data()[i] = sum_.data()[i] > T(0) ? sum_.data()[i] : T(0);
    }
  }

  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr, name(), ": backward() before forward()");
    require(dy.shape() == sum_.shape(), name(), ": output gradient ", dy.shape().str(), " does not match ",
            sum_.shape().str());
    ds_.resize(sum_.shape());
    for (std::size_t i = 0; i < ds_.size(); ++i) ds_.data()[i] = sum_.data()[i] > T(0) ? dy.data()[i] : T(0);
    const bool want_dx = this->input_gradient();
    bn2_.backward(ds_, g4_);
    conv2_.backward(g4_, g3_);
    for (std::size_t i = 0; i < g3_.size(); ++i)
      if (!(h2_.data()[i] > T(0))) g3_.data()[i] = T(0);
    bn1_.backward(g3_, g1_);
    conv1_.set_input_gradient(want_dx);
    conv1_.backward(g1_, dx);
    if (down_conv_) {
      down_bn_->backward(ds_, gd_);
      down_conv_->set_input_gradient(want_dx);
      down_conv_->backward(gd_, gx_);
      if (want_dx)
        for (std::size_t i = 0; i < dx.size(); ++i) dx.data()[i] += gx_.data()[i];
    } else if (want_dx) {
      for (std::size_t i = 0; i < dx.size(); ++i) dx.data()[i] += ds_.data()[i];
    }
  }

 private:
  static void relu(const tensor<T>& x, tensor<T>& y) {
    y.resize(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = x.data()[i] > T(0) ? x.data()[i] : T(0);
  }
  std::vector<layer<T>*> parts() {
    std::vector<layer<T>*> v{&conv1_, &bn1_, &conv2_, &bn2_};
    if (down_conv_) v.insert(v.end(), {down_conv_.get(), down_bn_.get()});
    return v;
  }
  std::vector<const layer<T>*> parts() const {
    std::vector<const layer<T>*> v{&conv1_, &bn1_, &conv2_, &bn2_};
    if (down_conv_) v.insert(v.end(), {down_conv_.get(), down_bn_.get()});
    return v;
  }
  std::vector<std::string> part_names() const {
    return {"conv1", "bn1", "conv2", "bn2", "downsample.0", "downsample.1"};
  }

  std::size_t in_, planes_, stride_;
  conv2d<T> conv1_;
  batch_norm2d<T> bn1_;
  conv2d<T> conv2_;
  batch_norm2d<T> bn2_;
  std::unique_ptr<conv2d<T>> down_conv_;
  std::unique_ptr<batch_norm2d<T>> down_bn_;
  const tensor<T>* x_ = nullptr;
  tensor<T> h1_, h2_, h3_, h4_, h5_, d1_, d2_, sum_, ds_, g4_, g3_, g1_, gd_, gx_;
};

}  // namespace nmhash::nn
