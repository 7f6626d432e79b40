// ResNet's residual blocks, as torchvision.models.resnet builds them:
//   basic block (BasicBlock, ResNet-18/34):
//     out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//     conv1 3 x 3 of stride S, conv2 3 x 3, both to `planes` channels;
//   bottleneck (Bottleneck, ResNet-50/101/152, torchvision's v1.5):
//     out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
//     conv1 1 x 1 to `planes`, conv2 3 x 3 of stride S, conv3 1 x 1 to
//     4 planes.
// Convolutions have no bias (3 x 3 ones are padded by 1). The shortcut is x
// itself, or, when the stride is not 1 or the channels change, the
// downsample path: a 1 x 1 convolution of stride S without bias and a batch
// norm. Parameters and buffers carry torchvision's names ("conv1.weight",
// "bn1.weight", "bn1.running_mean", ..., "downsample.0.weight",
// "downsample.1.bias"), so a block's state moves to and from PyTorch as it
// is.
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
class residual_block : public layer<T> {
 public:
  // One convolution of the main path: kernel (1 or 3), stride, channels out.
  struct stage {
    std::size_t kernel, stride, out;
  };

  residual_block(std::string kind, std::size_t in_channels, std::vector<stage> stages)
      : kind_(std::move(kind)), in_(in_channels) {
    require(!stages.empty(), "residual_block: no stage");
    std::size_t c = in_channels, stride = 1;
    for (const auto& s : stages) {
      convs_.push_back(std::make_unique<conv2d<T>>(c, s.out, conv2d_options{s.kernel, s.kernel, s.stride, s.kernel / 2, false}));
      bns_.push_back(std::make_unique<batch_norm2d<T>>(s.out));
      c = s.out;
      stride *= s.stride;
    }
    out_ = c;
    stride_ = stride;
    if (stride != 1 || in_channels != c) {
      down_conv_ = std::make_unique<conv2d<T>>(in_channels, c, conv2d_options{1, 1, stride, 0, false});
      down_bn_ = std::make_unique<batch_norm2d<T>>(c);
    }
    h_.resize(stages.size());
    g_.resize(stages.size());
    relu_out_.resize(stages.size());
  }

  // The main path's convolutions and batch norms, and the downsample path
  // (null where the shortcut is the identity).
  std::size_t stages() const { return convs_.size(); }
  conv2d<T>& conv(std::size_t i) const { return *convs_.at(i); }
  batch_norm2d<T>& bn(std::size_t i) const { return *bns_.at(i); }
  conv2d<T>* downsample_conv() const { return down_conv_.get(); }
  batch_norm2d<T>* downsample_bn() const { return down_bn_.get(); }

  std::string name() const override {
    return kind_ + "(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", stride " + std::to_string(stride_) +
           ")";
  }
  shape4 output_shape(const shape4& in) const override {
    shape4 s = in;
    for (const auto& c : convs_) s = c->output_shape(s);
    return s;
  }

  std::size_t parameter_count() const override {
    std::size_t n = 0;
    for (const auto& [name, l] : parts()) n += l->parameter_count();
    return n;
  }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    std::vector<std::pair<std::string, std::vector<std::size_t>>> out;
    for (const auto& [prefix, l] : parts())
      for (auto [n, s] : l->parameter_layout()) out.emplace_back(prefix + "." + n, std::move(s));
    return out;
  }
  std::vector<std::pair<std::string, aligned_vector<T>*>> buffers() override {
    std::vector<std::pair<std::string, aligned_vector<T>*>> out;
    for (const auto& [prefix, l] : parts())
      for (auto [n, b] : l->buffers()) out.emplace_back(prefix + "." + n, b);
    return out;
  }
  void bind(T* params, T* grads) override {
    for (const auto& [prefix, l] : parts()) {
      l->bind(params, grads);
      params += l->parameter_count();
      grads += l->parameter_count();
    }
  }
  void initialize(std::mt19937_64& gen) override {
    for (const auto& [prefix, l] : parts()) l->initialize(gen);
  }
  void set_init(init_scheme s) override {
    for (const auto& [prefix, l] : parts()) l->set_init(s);
  }

  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    x_ = &x;
    const tensor<T>* in = &x;
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      convs_[i]->forward(*in, h_[i].conv, training);
      bns_[i]->forward(h_[i].conv, h_[i].bn, training);
      in = &h_[i].bn;
      if (i + 1 < convs_.size()) {  // relu between the stages
        relu_out_[i].resize(h_[i].bn.shape());
        for (std::size_t j = 0; j < h_[i].bn.size(); ++j)
          relu_out_[i].data()[j] = h_[i].bn.data()[j] > T(0) ? h_[i].bn.data()[j] : T(0);
        in = &relu_out_[i];
      }
    }
    const tensor<T>* shortcut = &x;
    if (down_conv_) {
      down_conv_->forward(x, d1_, training);
      down_bn_->forward(d1_, d2_, training);
      shortcut = &d2_;
    }
    sum_.resize(in->shape());
    y.resize(in->shape());
    for (std::size_t i = 0; i < sum_.size(); ++i) {
      sum_.data()[i] = in->data()[i] + shortcut->data()[i];
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
    const tensor<T>* g = &ds_;
    for (std::size_t i = convs_.size(); i-- > 0;) {
      bns_[i]->backward(*g, g_[i].bn);
      if (i == 0) {
        convs_[0]->set_input_gradient(want_dx);
        convs_[0]->backward(g_[0].bn, dx);
        break;
      }
      convs_[i]->backward(g_[i].bn, g_[i].conv);
      // Through the relu after stage i - 1.
      for (std::size_t j = 0; j < g_[i].conv.size(); ++j)
        if (!(h_[i - 1].bn.data()[j] > T(0))) g_[i].conv.data()[j] = T(0);
      g = &g_[i].conv;
    }
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
  // The sub-layers with their torchvision names, in parameter order.
  std::vector<std::pair<std::string, layer<T>*>> parts() const {
    std::vector<std::pair<std::string, layer<T>*>> v;
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      v.emplace_back("conv" + std::to_string(i + 1), convs_[i].get());
      v.emplace_back("bn" + std::to_string(i + 1), bns_[i].get());
    }
    if (down_conv_) {
      v.emplace_back("downsample.0", down_conv_.get());
      v.emplace_back("downsample.1", down_bn_.get());
    }
    return v;
  }

  struct activations {
    tensor<T> conv, bn;
  };
  std::string kind_;
  std::size_t in_, out_ = 0, stride_ = 1;
  std::vector<std::unique_ptr<conv2d<T>>> convs_;
  std::vector<std::unique_ptr<batch_norm2d<T>>> bns_;
  std::unique_ptr<conv2d<T>> down_conv_;
  std::unique_ptr<batch_norm2d<T>> down_bn_;
  const tensor<T>* x_ = nullptr;
  std::vector<activations> h_, g_;
  std::vector<tensor<T>> relu_out_;
  tensor<T> d1_, d2_, sum_, ds_, gd_, gx_;
};

// torchvision's BasicBlock(in_channels, planes, stride).
template <class T>
residual_block<T> basic_block(std::size_t in_channels, std::size_t planes, std::size_t stride = 1) {
  return residual_block<T>("basic_block", in_channels, {{3, stride, planes}, {3, 1, planes}});
}

// torchvision's Bottleneck(in_channels, planes, stride): 4 planes out.
template <class T>
residual_block<T> bottleneck_block(std::size_t in_channels, std::size_t planes, std::size_t stride = 1) {
  return residual_block<T>("bottleneck", in_channels, {{1, 1, planes}, {3, stride, planes}, {1, 1, 4 * planes}});
}

}  // namespace nmhash::nn
