// nmhash_model: model files and PyTorch, both ways.
//   import  a PyTorch hashing network's state_dict (an architecture's names,
//           e.g. torchvision's for resnet18, and a linear hashing layer
//           hash.weight / hash.bias with K outputs) into an nmhash model file,
//           which hashing::encoder, nmhash_encode and nmhash_train
//           --init-from take; every missing, unexpected and mis-shaped
//           tensor is named and nothing is written
//   export  a model file's weights back in that state_dict layout, which
//           PyTorch's load_state_dict(strict=True) takes
//   info    what a model file holds
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/serialize.hpp"

namespace {

namespace nn = nmhash::nn;
namespace h = nmhash::hashing;

std::string list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The state_dict `weights` as a model of architecture `a`: the hashing
// layer's outputs are read from its weight, the tensors checked as
// load_state_dict(strict=True) checks them (PyTorch's batch-norm counters
// aside).
void import_model(nn::architecture a, const std::string& weights, const std::vector<float>& mean,
                  const std::vector<float>& stddev, long resize, const std::string& out) {
  nmhash::io::check_outputs({out});
  auto file = nmhash::io::load_safetensors(weights);
  std::size_t features = 0;
  const std::string hash = nn::hash_layer_name(nn::plan_backbone(a, features));
  const auto it = file.tensors.find(hash + ".weight");
  nmhash::require(it != file.tensors.end() && it->second.shape.size() == 2 && it->second.shape[1] == features &&
                      it->second.shape[0] >= 1 && it->second.shape[0] <= 4096,
                  weights, ": no hashing layer '", hash, ".weight' of shape [K, ", features, "] (K from 1 to 4096) for the ",
                  a.name, " backbone");
  const std::size_t bits = it->second.shape[0];
  const auto plan = nn::plan_hashing_network(a, bits);
  const nn::tensor_mismatch m = nn::compare_tensors(plan.parameters, file, [](const std::string& name) {
    return name.size() > 20 && name.compare(name.size() - 20, 20, ".num_batches_tracked") == 0;
  });
  nmhash::require(m.empty(), weights, ": not a state_dict of the ", a.name, " hashing network (", a.input_str(),
                  ", K = ", bits, "): ", m.str(), "; nothing written");
  nn::sequential<float> net;
  nn::build_hashing_network<float>(net, a, bits, 1);
  nn::load_parameters(file, weights, net);
  h::model_description md;
  md.arch = a;
  md.b_in = bits;
  md.transform.channels = a.channels;
  md.transform.height = a.height;
  md.transform.width = a.width;
  md.transform.resize = resize >= 0 ? static_cast<std::size_t>(resize)
                        : a.height >= 64 ? (std::min(a.height, a.width) * 256 + 112) / 224
                                         : std::min(a.height, a.width);
  md.transform.mean = mean;
  md.transform.stddev = stddev;
  nmhash::io::atomic_file f(out);
  h::write_model(f, net, h::neuron_partition(bits), md, {{"imported_from", weights}});
  f.commit();
  std::printf("wrote %s: %s (%s), input %s, K = %zu, %zu tensors\n", out.c_str(), a.name.c_str(), a.layers.c_str(),
              a.input_str().c_str(), bits, plan.parameters.size());
}

// A model file as a state_dict: its network's tensors and, for every batch
// norm, PyTorch's num_batches_tracked counter (0: nmhash does not count).
void export_model(const std::string& model, const std::string& out) {
  nmhash::io::check_outputs({out});
  const auto f = nmhash::io::load_safetensors(model);
  const auto d = h::read_model_description(f, model);
  h::check_model_tensors(f, d, model);
  const auto grouping = h::detail::read_node_of(f, d.b_in, model);
  nmhash::require(grouping.is_identity(), model, ": its NMLayer merges ", d.b_in, " outputs into ", grouping.nodes(),
                  " bits by majority vote, which a PyTorch linear layer cannot express; export a model without merges");
  nmhash::io::tensor_map tensors;
  const std::int64_t zero = 0;
  for (const auto& [name, t] : f.tensors) {
    if (name == "nm.node_of") continue;
    tensors.emplace(name, t);
    const std::string stats = ".running_mean";
    if (name.size() > stats.size() && name.compare(name.size() - stats.size(), stats.size(), stats) == 0)
      tensors.emplace(name.substr(0, name.size() - stats.size()) + ".num_batches_tracked",
                      nmhash::io::named_tensor::from(&zero, {}));
  }
  nmhash::io::save_safetensors(out, tensors, {{"format", "pt"}});
  std::printf("wrote %s: %zu tensors of %s (%s), K = %zu\n", out.c_str(), tensors.size(), d.arch.name.c_str(),
              d.arch.input_str().c_str(), grouping.nodes());
}

void info(const std::string& model) {
  const auto f = nmhash::io::load_safetensors(model);
  const auto d = h::read_model_description(f, model);
  h::check_model_tensors(f, d, model);
  const auto grouping = h::detail::read_node_of(f, d.b_in, model);
  std::size_t values = 0;
  for (const auto& [name, t] : f.tensors) values += name == "nm.node_of" ? 0 : t.elements();
  std::printf("%s\n  architecture %s: %s\n  input %s, resize %zu, mean [%s], std [%s]\n  B_in %zu, %zu bits (%s), "
              "vote tie %s\n  %zu tensors, %zu values\n",
              model.c_str(), d.arch.name.c_str(), d.arch.layers.c_str(), d.arch.input_str().c_str(), d.transform.resize,
              list([&] {
                std::vector<std::string> v;
                for (float x : d.transform.mean) v.push_back(std::to_string(x));
                return v;
              }()).c_str(),
              list([&] {
                std::vector<std::string> v;
                for (float x : d.transform.stddev) v.push_back(std::to_string(x));
                return v;
              }()).c_str(),
              d.b_in, grouping.nodes(), grouping.is_identity() ? "no merges" : grouping.str().c_str(),
              h::to_string(d.tie), f.tensors.size(), values);
  for (const auto& [k, v] : f.metadata)
    if (k != "format" && k != "arch" && k != "arch_name" && k != "input" && k != "transform" && k != "b_in" &&
        k != "bits" && k != "vote_tie")
      std::printf("  %s: %s\n", k.c_str(), v.c_str());
}

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_model: model files from and to PyTorch state_dicts, and what a model file holds"};
  app.require_subcommand(1);
  std::string arch, input, weights, model, out;
  std::vector<float> mean, stddev;
  long resize = -1;
  auto* imp = app.add_subcommand("import", "a PyTorch hashing network's state_dict (safetensors) as a model file");
  imp->add_option("--arch", arch, "the backbone: a preset (resnet18, resnet34, lenet, cifar, cnnf) or a layer spec")
      ->required();
  imp->add_option("--input", input, "network input CxHxW (default: the preset's)");
  imp->add_option("--weights", weights, "the state_dict, e.g. safetensors.torch.save_file(model.state_dict(), F)")
      ->required()
      ->check(CLI::ExistingFile);
  imp->add_option("--mean", mean, "per-channel mean of pixels / 255 the network was trained with")
      ->required()
      ->delimiter(',');
  imp->add_option("--std", stddev, "per-channel standard deviation of pixels / 255")->required()->delimiter(',');
  imp->add_option("--resize", resize, "shorter edge before the centre crop (default: 256/224 of inputs of 64 or more)")
      ->check(nmhash_tool::integer_range(0, 16384));
  imp->add_option("--out", out, "the model file")->required();
  auto* exp = app.add_subcommand("export", "a model file's weights as a state_dict PyTorch loads strictly");
  exp->add_option("--model", model, "the model file")->required()->check(CLI::ExistingFile);
  exp->add_option("--out", out, "the state_dict (safetensors)")->required();
  auto* inf = app.add_subcommand("info", "what a model file holds");
  inf->add_option("model", model, "the model file")->required()->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (imp->parsed()) {
      nn::architecture a;
      if (const auto* p = nn::find_architecture(arch)) {
        a = *p;
      } else {
        a.name = "custom";
        a.layers = arch;
        nmhash::require(!input.empty(), "--arch spec: give --input CxHxW");
      }
      if (!input.empty()) nn::parse_input_shape(input, a.channels, a.height, a.width);
      nmhash::require(mean.size() == stddev.size() && (mean.size() == 1 || mean.size() == a.channels), "--mean has ",
                      mean.size(), " values and --std ", stddev.size(), ", expected 1 or ", a.channels, " each");
      for (float v : stddev) nmhash::require(v > 0, "--std holds ", v, ", expected values above 0");
      import_model(a, weights, mean, stddev, resize, out);
    } else if (exp->parsed()) {
      export_model(model, out);
    } else {
      info(model);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_model: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(false);
  return nmhash_tool::finish("nmhash_model", run_tool(argc, argv));
}
