// A trained hashing model in one safetensors file: the network's
// parameters under PyTorch Sequential names ("<layer>.weight", ...) and the
// NMLayer's grouping as "nm.node_of" (B_in entries: the output node of each
// hashing neuron, -1 for a neuron left out), so an engine encodes with the
// file alone: codes = majority vote over the groups of sgn(net(x)).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nmhash/hashing/partition.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/serialize.hpp"

namespace nmhash::hashing {

namespace detail {

// The grouping as "nm.node_of": B_in entries, each neuron's node or -1.
inline io::named_tensor node_of_tensor(const neuron_partition& grouping) {
  std::vector<double> node_of;
  for (std::size_t id : grouping.node_ids())
    node_of.push_back(id == neuron_partition::unused ? -1.0 : static_cast<double>(id));
  return io::named_tensor::from(node_of.data(), {node_of.size()});
}

}  // namespace detail

template <class T>
void save_hashing_model(const std::string& path, nn::sequential<T>& net, const neuron_partition& grouping,
                        std::map<std::string, std::string> metadata = {}) {
  require(net.output_shape()[1] == grouping.inputs(), path, ": the network outputs ", net.output_shape()[1],
          " values, the grouping covers ", grouping.inputs(), " neurons");
  auto tensors = nn::parameter_tensors(net);
  tensors["nm.node_of"] = detail::node_of_tensor(grouping);
  metadata["bits"] = std::to_string(grouping.nodes());
  io::save_safetensors(path, tensors, metadata);
}

namespace detail {

// The grouping stored as "nm.node_of" in `f` (B_in entries, each a node
// index or -1), validated entry by entry.
inline neuron_partition read_node_of(const io::safetensors_file& f, std::size_t b_in, const std::string& path) {
  std::vector<double> node_of(b_in);
  f.at("nm.node_of", {b_in}, path).copy_to(node_of.data(), b_in);
  std::vector<std::size_t> ids;
  for (std::size_t n = 0; n < b_in; ++n) {
    const double v = node_of[n];
    require(v == -1.0 || (v >= 0 && v < static_cast<double>(b_in) && v == static_cast<double>(static_cast<std::size_t>(v))),
            path, ": nm.node_of[", n, "] = ", v, " is not a node index or -1");
    ids.push_back(v < 0 ? neuron_partition::unused : static_cast<std::size_t>(v));
  }
  try {
    return neuron_partition::from_node_ids(ids);
  } catch (const error& e) {
    nmhash::detail::fail(path, ": nm.node_of: ", e.what());
  }
}

}  // namespace detail

// Loads the parameters into `net` (same architecture) and returns the
// grouping. A file without "nm.node_of" is a plain network (identity).
template <class T>
neuron_partition load_hashing_model(const std::string& path, nn::sequential<T>& net) {
  const auto f = io::load_safetensors(path);
  nn::load_parameters(f, path, net);
  const std::size_t b_in = net.output_shape()[1];
  if (!f.tensors.count("nm.node_of")) return neuron_partition(b_in);
  return detail::read_node_of(f, b_in, path);
}

}  // namespace nmhash::hashing
