// libFuzzer harness for model files: the safetensors parser, then
// nn::load_parameters into a small fixed network and the NMLayer grouping
// "nm.node_of". Only nmhash::error may leave the library; a loaded model
// holds exactly the file's values and a valid grouping.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/sequential.hpp"
#include "nmhash/nn/serialize.hpp"

#include "harness.hpp"
#include "model_net.hpp"

namespace {

using nmhash_fuzz::check;

// Heap the parser may hold for `size` input bytes: the JSON document (a few
// dozen bytes per input byte at worst, "[[[[..."), the tensors' bytes and
// the error messages.
constexpr std::size_t heap_bound(std::size_t size) { return 128 * size + (256u << 10); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static nmhash::nn::sequential<float>& net = *[] {
    auto* n = new nmhash::nn::sequential<float>;
    nmhash_fuzz::build_model_net(*n);
    return n;
  }();
  const std::string name = "fuzz.model.safetensors";
  const auto parsed =
      nmhash_fuzz::parse_bounded([&] { return nmhash::io::parse_safetensors(data, size, name); }, heap_bound(size));
  if (!parsed) return 0;
  const nmhash::io::safetensors_file& f = *parsed;
  // Model metadata: a description that is accepted, and whose tensors are
  // accepted, plans a network whose every parameter is the file's, bounded
  // activations, and finite weights; nothing is built for it here.
  try {
    const auto d = nmhash::hashing::read_model_description(f, name);
    check(d.b_in >= 1 && d.b_in <= 4096 && d.transform.resize <= nmhash::hashing::max_resize);
    nmhash::hashing::check_model_tensors(f, d, name);
    const auto plan = nmhash::nn::plan_hashing_network(d.arch, d.b_in);
    check(plan.activations_per_image <= nmhash::hashing::max_activations_per_image);
    for (const auto& [pname, shape] : plan.parameters) check(f.tensors.at(pname).shape == shape);
  } catch (const nmhash::error&) {
  }
  try {
    nmhash::nn::load_parameters(f, name, net);
    std::size_t off = 0;
    for (std::size_t i = 0; i < net.size(); ++i)
      for (const auto& [pname, shape] : net.at(i).parameter_layout()) {
        const auto& t = f.tensors.at(std::to_string(i) + "." + pname);
        check(t.shape == shape);
        std::vector<float> v(t.elements());
        t.copy_to(v.data(), v.size());
        for (std::size_t j = 0; j < v.size(); ++j) {
          const float p = net.parameters()[off + j];
          check(p == v[j] || (p != p && v[j] != v[j]));
        }
        off += v.size();
      }
    check(off == net.parameters().size());
  } catch (const nmhash::error&) {
  }
  const std::size_t b_in = net.output_shape()[1];
  try {
    const nmhash::hashing::neuron_partition p = nmhash::hashing::detail::read_node_of(f, b_in, name);
    check(p.inputs() == b_in);
    check(p.nodes() >= 1 && p.nodes() <= b_in);
    const std::vector<std::size_t> ids = p.node_ids();
    check(ids.size() == b_in);
    std::vector<double> stored(b_in);
    f.tensors.at("nm.node_of").copy_to(stored.data(), b_in);
    for (std::size_t n = 0; n < b_in; ++n) {
      check(ids[n] == nmhash::hashing::neuron_partition::unused || ids[n] < p.nodes());
      check((ids[n] == nmhash::hashing::neuron_partition::unused) == (stored[n] == -1.0));
    }
    check(nmhash::hashing::neuron_partition::from_node_ids(ids) == p);
  } catch (const nmhash::error&) {
  }
  return 0;
}
