// The layer interface: explicit forward and backward, no autograd graph.
// forward() keeps what backward() needs; backward() fills the input
// gradient and accumulates the parameter gradients. Parameters and their
// gradients live in flat buffers owned by the model (see sequential.hpp),
// bound to each layer as slices, so optimizers step over one buffer.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/tensor.hpp"
#include "nmhash/nn/init.hpp"

namespace nmhash::nn {

template <class T>
class layer {
 public:
  virtual ~layer() = default;
  virtual std::string name() const = 0;
  // Output shape for an input shape; throws on an incompatible input.
  virtual shape4 output_shape(const shape4& in) const = 0;
  virtual std::size_t parameter_count() const { return 0; }
  // Points the layer's parameters and gradients at slices of flat buffers
  // (parameter_count() elements each).
  virtual void bind(T* /*params*/, T* /*grads*/) {}
  // Names and shapes of the parameter tensors, in buffer order (PyTorch's
  // names and layouts: "weight" then "bias").
  virtual std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const {
    return {};
  }
  // State that is saved and loaded with the parameters but not trained
  // (batch norm's running statistics): names (PyTorch's) and 1-D buffers.
  virtual std::vector<std::pair<std::string, aligned_vector<T>*>> buffers() { return {}; }
  // Draws the parameters from the seeded generator.
  virtual void initialize(std::mt19937_64& /*gen*/) {}
  // Sets the scheme initialize() draws weights by (layers with weights; the
  // blocks pass it to theirs).
  virtual void set_init(init_scheme /*s*/) {}
  virtual void forward(const tensor<T>& x, tensor<T>& y, bool training) = 0;
  // Accumulates the parameter gradients and writes the input gradient to dx
  // (left untouched where input_gradient() is off and the layer can skip it).
  virtual void backward(const tensor<T>& dy, tensor<T>& dx) = 0;

  // Whether backward() must produce the input gradient; a network's first
  // layer usually need not (its input is data).
  bool input_gradient() const { return input_gradient_; }
  void set_input_gradient(bool on) { input_gradient_ = on; }

 private:
  bool input_gradient_ = true;
};

}  // namespace nmhash::nn
