// A chain of layers that owns the model's parameters and gradients as two
// flat buffers (each layer bound to a slice), the activations of the last
// forward pass, and the parameter groups optimizers step with their own
// learning rates.
#pragma once

#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

// A contiguous range of the flat parameter buffer with its group id.
struct parameter_range {
  std::size_t offset = 0;
  std::size_t count = 0;
  int group = 0;
};

template <class T>
class sequential {
 public:
  // Appends a layer whose parameters belong to `group` (0 by default),
  // named `name` in files (default: its index, as PyTorch's nn.Sequential
  // names its layers; a name such as "layer1.0" gives torchvision's).
  template <class L>
  L& add(L layer, int group = 0, std::string name = {}) {
    require(!built_, "sequential: add() after build()");
    auto p = std::make_unique<L>(std::move(layer));
    L& ref = *p;
    layers_.push_back(std::move(p));
    groups_.push_back(group);
    names_.push_back(std::move(name));
    return ref;
  }

  // The name of layer i's tensors ("<name>.weight"): its name, or its index.
  std::string layer_name(std::size_t i) const { return names_.at(i).empty() ? std::to_string(i) : names_[i]; }

  // Checks the shapes along the chain for `input` and allocates and binds
  // the parameter and gradient buffers.
  void build(const shape4& input) {
    shape4 s = input;
    input_shape_ = input;
    std::size_t total = 0;
    for (auto& l : layers_) {
      s = l->output_shape(s);
      total += l->parameter_count();
    }
    output_shape_ = s;
    params_.assign(total, T(0));
    grads_.assign(total, T(0));
    ranges_.clear();
    std::size_t off = 0;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const std::size_t c = layers_[i]->parameter_count();
      layers_[i]->bind(params_.data() + off, grads_.data() + off);
      if (c) ranges_.push_back({off, c, groups_[i]});
      off += c;
    }
    acts_.resize(layers_.size());
    built_ = true;
  }

  // Sets every layer's initialisation scheme (layer::set_init).
  void set_init(init_scheme s) {
    for (auto& l : layers_) l->set_init(s);
  }

  void initialize(std::uint64_t seed) {
    require(built_, "sequential: initialize() before build()");
    std::mt19937_64 gen(seed);
    for (auto& l : layers_) l->initialize(gen);
  }

  // Runs every layer; the result stays valid until the next forward().
  const tensor<T>& forward(const tensor<T>& x, bool training) {
    require(built_, "sequential: forward() before build()");
    const tensor<T>* in = &x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layers_[i]->forward(*in, acts_[i], training);
      in = &acts_[i];
    }
    return *in;
  }

  // Whether backward() computes the gradient with respect to the network's
  // input (on by default; training on data turns it off and saves the first
  // layer's input-gradient pass).
  void set_input_gradient(bool on) {
    require(!layers_.empty(), "sequential: set_input_gradient() on an empty network");
    layers_.front()->set_input_gradient(on);
  }

  // Back-propagates dy (the gradient of the loss with respect to the last
  // output), accumulating parameter gradients; returns the input gradient
  // (unspecified when set_input_gradient(false)).
  const tensor<T>& backward(const tensor<T>& dy) {
    const tensor<T>* g = &dy;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      layers_[i]->backward(*g, grad_[i % 2]);
      g = &grad_[i % 2];
    }
    return *g;
  }

  void zero_grad() { std::fill(grads_.begin(), grads_.end(), T(0)); }

  aligned_vector<T>& parameters() { return params_; }
  const aligned_vector<T>& parameters() const { return params_; }
  aligned_vector<T>& gradients() { return grads_; }
  const std::vector<parameter_range>& ranges() const { return ranges_; }
  const shape4& output_shape() const { return output_shape_; }
  // The input shape the network was built for.
  const shape4& input_shape() const { return input_shape_; }
  std::size_t size() const { return layers_.size(); }
  layer<T>& at(std::size_t i) { return *layers_[i]; }

 private:
  std::vector<std::unique_ptr<layer<T>>> layers_;
  std::vector<int> groups_;
  std::vector<std::string> names_;
  aligned_vector<T> params_, grads_;
  std::vector<parameter_range> ranges_;
  std::vector<tensor<T>> acts_;
  tensor<T> grad_[2];
  shape4 input_shape_{}, output_shape_{};
  bool built_ = false;
};

}  // namespace nmhash::nn
