// Saving and loading a sequential model's parameters as safetensors, under
// PyTorch nn.Sequential's names ("<layer index>.weight", "<index>.bias") and
// layouts, so weights move between nmhash and an equivalent PyTorch model.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::nn {

// The parameters and buffers (batch norm's running statistics) of `net`.
template <class T>
io::tensor_map parameter_tensors(sequential<T>& net) {
  io::tensor_map out;
  std::size_t off = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const auto& [name, shape] : net.at(i).parameter_layout()) {
      io::named_tensor t = io::named_tensor::from(net.parameters().data() + off, shape);
      off += t.elements();
      out.emplace(net.layer_name(i) + "." + name, std::move(t));
    }
    for (const auto& [name, buf] : net.at(i).buffers())
      out.emplace(net.layer_name(i) + "." + name, io::named_tensor::from(buf->data(), {buf->size()}));
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
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const auto& [name, shape] : net.at(i).parameter_layout()) {
      const io::named_tensor& t = file.at(net.layer_name(i) + "." + name, shape, path);
      t.copy_to(net.parameters().data() + off, t.elements());
      off += t.elements();
    }
    for (const auto& [name, buf] : net.at(i).buffers())
      file.at(net.layer_name(i) + "." + name, {buf->size()}, path).copy_to(buf->data(), buf->size());
  }
}

// What load_matching_parameters() did.
struct load_report {
  std::vector<std::string> loaded;   // names copied into the network
  std::vector<std::string> skipped;  // "name: reason", of the network's tensors and the file's
};

// Copies every tensor of `file` whose name and shape match a parameter or
// buffer of `net` (a backbone exported from PyTorch under nn.Sequential names, say)
// and reports the rest: parameters the file lacks or holds in another
// shape, and tensors of the file the network has no parameter for.
template <class T>
load_report load_matching_parameters(const io::safetensors_file& file, sequential<T>& net) {
  load_report r;
  std::set<std::string> used;
  // One tensor of the network: its name, shape and storage.
  const auto match = [&](const std::string& full, const std::vector<std::size_t>& shape, T* dst) {
    std::size_t count = 1;
    for (std::size_t d : shape) count *= d;
    const auto it = file.tensors.find(full);
    if (it == file.tensors.end()) {
      r.skipped.push_back(full + ": not in the file (kept its initialisation)");
    } else if (it->second.shape != shape) {
      used.insert(full);
      r.skipped.push_back(full + ": shape " + nlohmann::json(it->second.shape).dump() + " in the file, " +
                          nlohmann::json(shape).dump() + " in the network (kept its initialisation)");
    } else {
      used.insert(full);
      it->second.copy_to(dst, count);
      r.loaded.push_back(full);
    }
    return count;
  };
  std::size_t off = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const auto& [name, shape] : net.at(i).parameter_layout())
      off += match(net.layer_name(i) + "." + name, shape, net.parameters().data() + off);
    for (const auto& [name, buf] : net.at(i).buffers()) match(net.layer_name(i) + "." + name, {buf->size()}, buf->data());
  }
  for (const auto& [name, t] : file.tensors)
    if (!used.count(name)) r.skipped.push_back(name + ": the network has no such parameter");
  return r;
}

}  // namespace nmhash::nn
