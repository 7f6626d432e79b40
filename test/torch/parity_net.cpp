// The nmhash side of test/torch/parity.py: builds the hashing network of an
// architecture spec, loads the weights and buffers PyTorch wrote under
// nn.Sequential names, and writes for input x and output gradient dy
// (.npy): the evaluation-mode outputs, the training-mode outputs, the
// parameter gradients of one training-mode backward pass, and the running
// statistics after it.
// Usage: nmhash_torch_parity SPEC|PRESET CxHxW BITS WEIGHTS X DY OUT_DIR [double]
// (double: the network in double precision, against PyTorch's in double).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "nmhash/io/npy.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/serialize.hpp"

namespace {

template <class T>
int run(char** argv) {
  nmhash::nn::architecture a;
  a.name = "parity";
  a.layers = argv[1];
  // PRESET/nodropout: the preset with its dropout layers at p = 0 (training
  // outputs are then comparable; the names stay the preset's).
  const std::string suffix = "/nodropout";
  const bool nodropout = a.layers.size() > suffix.size() &&
                         a.layers.compare(a.layers.size() - suffix.size(), suffix.size(), suffix) == 0;
  if (nodropout) a.layers.resize(a.layers.size() - suffix.size());
  if (const auto* preset = nmhash::nn::find_architecture(a.layers)) a.layers = preset->layers;
  for (std::size_t at; nodropout && (at = a.layers.find("dropout0.5")) != std::string::npos;)
    a.layers.replace(at, 10, "dropout0");
  nmhash::nn::parse_input_shape(argv[2], a.channels, a.height, a.width);
  const std::size_t bits = std::stoul(argv[3]);
  const auto xa = nmhash::io::read_npy(argv[5]), dya = nmhash::io::read_npy(argv[6]);
  const std::string out = argv[7];
  const std::size_t n = xa.rows();
  nmhash::nn::sequential<T> net;
  nmhash::nn::build_hashing_network<T>(net, a, bits, n);
  // The state_dict as PyTorch saves it: every tensor of the network must
  // load, and only the batch-norm counters (int64) are left over.
  const auto report = nmhash::nn::load_matching_parameters(nmhash::io::load_safetensors(argv[4]), net);
  for (const auto& skipped : report.skipped)
    nmhash::require(skipped.find(".num_batches_tracked: the network has no such parameter") != std::string::npos,
                    argv[4], ": ", skipped);
  nmhash::tensor<T> x(nmhash::shape4{n, a.channels, a.height, a.width}), dy(nmhash::shape4{n, bits});
  const auto xv = xa.to_vector<T>(), dyv = dya.to_vector<T>();
  nmhash::require(xv.size() == x.size() && dyv.size() == dy.size(), "x or dy has the wrong size");
  std::copy(xv.begin(), xv.end(), x.data());
  std::copy(dyv.begin(), dyv.end(), dy.data());
  const auto eval = net.forward(x, false);
  nmhash::io::write_npy(out + "/eval.npy", eval.data(), {n, bits});
  const auto train = net.forward(x, true);
  nmhash::io::write_npy(out + "/train.npy", train.data(), {n, bits});
  net.zero_grad();
  net.backward(dy);
  // The gradients ("grad.<name>", laid out as the parameters) and the
  // buffers after the training step.
  nmhash::io::tensor_map grads;
  nmhash::nn::for_each_tensor(net, net.gradients().data(),
                              [&](const std::string& name, const std::vector<std::size_t>& shape, T* data, bool buffer) {
                                grads.emplace(buffer ? name : "grad." + name, nmhash::io::named_tensor::from(data, shape));
                              });
  nmhash::io::save_safetensors(out + "/after.safetensors", grads);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8 && argc != 9) {
    std::fprintf(stderr, "usage: %s SPEC CxHxW BITS WEIGHTS X DY OUT_DIR [double]\n", argv[0]);
    return 2;
  }
  try {
    return argc == 9 && std::string(argv[8]) == "double" ? run<double>(argv) : run<float>(argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_torch_parity: error: %s\n", e.what());
    return 1;
  }
}
