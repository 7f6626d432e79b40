// Saving and loading a sequential model's parameters as safetensors, under
// PyTorch nn.Sequential's names ("<layer index>.weight", "<index>.bias") and
// layouts, so weights move between nmhash and an equivalent PyTorch model.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::nn {

// f(name, shape, storage, is_buffer) for every parameter and buffer (batch
// norm's running statistics) of `net`, in order, under the names files use
// ("<layer name>.<tensor>"). A parameter's storage is its slice of
// `params`, a buffer laid out as net.parameters() (its gradients, say; null
// for a network not built); a buffer's is the layer's own.
template <class T, class F>
void for_each_tensor(sequential<T>& net, T* params, F&& f) {
  std::size_t off = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const auto& [name, shape] : net.at(i).parameter_layout()) {
      std::size_t count = 1;
      for (std::size_t d : shape) count *= d;
      f(net.layer_name(i) + "." + name, shape, params ? params + off : nullptr, false);
      off += count;
    }
    for (const auto& [name, buf] : net.at(i).buffers())
      f(net.layer_name(i) + "." + name, std::vector<std::size_t>{buf->size()}, buf->data(), true);
  }
}

// The parameters and buffers of `net`.
template <class T>
io::tensor_map parameter_tensors(sequential<T>& net) {
  io::tensor_map out;
  for_each_tensor(net, net.parameters().data(), [&](std::string name, const std::vector<std::size_t>& shape, T* data, bool) {
    out.emplace(std::move(name), io::named_tensor::from(data, shape));
  });
  return out;
}

// The names and shapes a file must hold against the tensors it holds, as
// PyTorch's load_state_dict(strict=True) compares them.
struct tensor_mismatch {
  std::vector<std::string> missing, unexpected, misshaped;  // misshaped: "name [found], expected [shape]"

  bool empty() const { return missing.empty() && unexpected.empty() && misshaped.empty(); }
  // "missing: a, b; unexpected: c; wrong shape: d [2], expected [3]" (at
  // most 20 names a list).
  std::string str() const {
    const auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (std::size_t i = 0; i < v.size() && i < 20; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 20) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    std::string msg;
    if (!missing.empty()) msg += "missing: " + list(missing) + "; ";
    if (!unexpected.empty()) msg += "unexpected: " + list(unexpected) + "; ";
    if (!misshaped.empty()) msg += "wrong shape: " + list(misshaped) + "; ";
    if (!msg.empty()) msg.resize(msg.size() - 2);
    return msg;
  }
};

// Compares `expected` (names and shapes) with the tensors of `file`;
// file tensors for which `ignored` holds are not unexpected.
template <class Ignored>
tensor_mismatch compare_tensors(const std::vector<std::pair<std::string, std::vector<std::size_t>>>& expected,
                                const io::safetensors_file& file, Ignored&& ignored) {
  tensor_mismatch m;
  std::set<std::string> planned;
  for (const auto& [name, shape] : expected) {
    planned.insert(name);
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end())
      m.missing.push_back(name);
    else if (it->second.shape != shape)
      m.misshaped.push_back(name + " " + nlohmann::json(it->second.shape).dump() + ", expected " +
                            nlohmann::json(shape).dump());
  }
  for (const auto& [name, t] : file.tensors)
    if (!planned.count(name) && !ignored(name)) m.unexpected.push_back(name);
  return m;
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
  for_each_tensor(net, net.parameters().data(), [&](const std::string& name, const std::vector<std::size_t>& shape, T* data, bool) {
    const io::named_tensor& t = file.at(name, shape, path);
    t.copy_to(data, t.elements());
  });
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
  for_each_tensor(net, net.parameters().data(), [&](const std::string& full, const std::vector<std::size_t>& shape, T* dst, bool) {
    const auto it = file.tensors.find(full);
    if (it == file.tensors.end()) {
      r.skipped.push_back(full + ": not in the file (kept its initialisation)");
    } else if (it->second.shape != shape) {
      used.insert(full);
      r.skipped.push_back(full + ": shape " + nlohmann::json(it->second.shape).dump() + " in the file, " +
                          nlohmann::json(shape).dump() + " in the network (kept its initialisation)");
    } else {
      used.insert(full);
      it->second.copy_to(dst, it->second.elements());
      r.loaded.push_back(full);
    }
  });
  for (const auto& [name, t] : file.tensors)
    if (!used.count(name)) r.skipped.push_back(name + ": the network has no such parameter");
  return r;
}

}  // namespace nmhash::nn
