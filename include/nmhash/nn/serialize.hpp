// Saving and loading a sequential model's parameters as safetensors, under
// PyTorch nn.Sequential's names ("<layer index>.weight", "<index>.bias") and
// layouts, so weights move between nmhash and an equivalent PyTorch model.
#pragma once

#include <map>
#include <string>

#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::nn {

template <class T>
io::tensor_map parameter_tensors(sequential<T>& net) {
  io::tensor_map out;
  std::size_t off = 0;
  for (std::size_t i = 0; i < net.size(); ++i)
    for (const auto& [name, shape] : net.at(i).parameter_layout()) {
      io::named_tensor t = io::named_tensor::from(net.parameters().data() + off, shape);
      off += t.elements();
      out.emplace(std::to_string(i) + "." + name, std::move(t));
    }
  return out;
}

template <class T>
void save_parameters(const std::string& path, sequential<T>& net,
                     const std::map<std::string, std::string>& metadata = {}) {
  io::save_safetensors(path, parameter_tensors(net), metadata);
}

// Loads every parameter tensor of `net` from `file` (read from `path`);
// names and shapes must match.
template <class T>
void load_parameters(const io::safetensors_file& file, const std::string& path, sequential<T>& net) {
  std::size_t off = 0;
  for (std::size_t i = 0; i < net.size(); ++i)
    for (const auto& [name, shape] : net.at(i).parameter_layout()) {
      const io::named_tensor& t = file.at(std::to_string(i) + "." + name, shape, path);
      t.copy_to(net.parameters().data() + off, t.elements());
      off += t.elements();
    }
}

}  // namespace nmhash::nn
