// A trained hashing model as one self-describing safetensors file, and the
// encoder an engine holds to turn images into codes with it.
//
// The file holds the network's parameters under nn.Sequential names, the
// NMLayer's grouping ("nm.node_of", B_in entries) and in its metadata
//   format     "nmhash-model/1"
//   arch       the backbone spec (nn/arch.hpp), arch_name its preset name
//   input      "CxHxW", the network input
//   b_in       hashing-layer outputs; bits the code length (node count)
//   transform  JSON: {"resize": R, "mean": [...], "std": [...]}, the
//              evaluation transform (resize of the shorter edge to R when R
//              > 0, centre crop to the input, (pixels / 255 - mean) / std)
//   vote_tie   how an even node breaks a tie: first_child (also when the
//              field is absent) or summed_output (partition.hpp)
// so a program rebuilds and runs the model from the file alone: code =
// majority vote over each node's neurons of sgn(network(x)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/codes/bit_ops.hpp"
#include "nmhash/codes/pack.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/partition.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/serialize.hpp"

namespace nmhash::hashing {

inline constexpr const char* model_format = "nmhash-model/1";

// Everything but the weights.
struct model_description {
  nn::architecture arch;
  std::size_t b_in = 0;
  data::transform_options transform;  // channels, height and width are the input's
  vote_tie tie = vote_tie::first_child;
};

inline std::map<std::string, std::string> model_metadata(const model_description& d, const neuron_partition& grouping) {
  const nlohmann::json t = {{"resize", d.transform.resize}, {"mean", d.transform.mean}, {"std", d.transform.stddev}};
  return {{"format", model_format},
          {"arch", d.arch.layers},
          {"arch_name", d.arch.name},
          {"input", d.arch.input_str()},
          {"b_in", std::to_string(d.b_in)},
          {"bits", std::to_string(grouping.nodes())},
          {"transform", t.dump()},
          {"vote_tie", to_string(d.tie)}};
}

// Writes the model into `f` (the caller commits); `extra` adds metadata.
template <class T>
void write_model(io::atomic_file& f, nn::sequential<T>& net, const neuron_partition& grouping,
                 const model_description& d, const std::map<std::string, std::string>& extra = {}) {
  require(net.output_shape()[1] == grouping.inputs() && grouping.inputs() == d.b_in, f.path(),
          ": the network outputs ", net.output_shape()[1], " values, the grouping covers ", grouping.inputs(),
          " neurons, the description says B_in = ", d.b_in);
  auto tensors = nn::parameter_tensors(net);
  tensors["nm.node_of"] = detail::node_of_tensor(grouping);
  auto meta = model_metadata(d, grouping);
  for (const auto& [k, v] : extra) meta.emplace(k, v);
  io::write_safetensors(f, tensors, meta);
}

// The largest shorter-edge resize a model file may ask for.
inline constexpr std::uint64_t max_resize = 16384;
// The most activation values one image may pass through a model's network.
inline constexpr std::size_t max_activations_per_image = std::size_t{1} << 28;

// Checks the parameters a file holds against those the description's
// network has, before the network is built: every missing, unexpected
// and mis-shaped tensor is named, as PyTorch's load_state_dict(strict)
// does; the activations one image needs are bounded.
inline void check_model_tensors(const io::safetensors_file& f, const model_description& d, const std::string& path) {
  nn::network_plan plan;
  try {
    plan = nn::plan_hashing_network(d.arch, d.b_in);
  } catch (const error& e) {
    nmhash::detail::fail(path, ": metadata field 'arch': ", e.what());
  }
  require(plan.activations_per_image <= max_activations_per_image, path, ": the network of metadata 'arch' and 'input' (",
          d.arch.input_str(), ") passes ", plan.activations_per_image, " values per image, more than the limit of ",
          max_activations_per_image);
  const nn::tensor_mismatch m =
      nn::compare_tensors(plan.parameters, f, [](const std::string& name) { return name == "nm.node_of"; });
  require(m.empty(), path, ": the weights do not fit the architecture in the metadata (", d.arch.layers, ", input ",
          d.arch.input_str(), ", B_in ", d.b_in, "); ", m.str());
  for (const auto& [name, shape] : plan.parameters) {
    const auto& t = f.tensors.at(name);
    std::vector<double> v(t.elements());
    t.copy_to(v.data(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      require(std::isfinite(v[i]), path, ": tensor '", name, "' holds ", v[i], " at value ", i,
              " (the weights must be finite numbers)");
  }
}

// The description stored in a model file (read from `path`).
inline model_description read_model_description(const io::safetensors_file& f, const std::string& path) {
  const std::string& format = f.meta("format", path);
  require(format == model_format, path, ": metadata field 'format' is '", format, "', expected '", model_format,
          "' (a checkpoint or a plain weights file is not a model)");
  model_description d;
  d.arch.layers = f.meta("arch", path);
  d.arch.name = f.metadata.count("arch_name") ? f.metadata.at("arch_name") : "custom";
  try {
    nn::parse_input_shape(f.meta("input", path), d.arch.channels, d.arch.height, d.arch.width);
  } catch (const error& e) {
    nmhash::detail::fail(path, ": metadata field 'input': ", e.what());
  }
  const std::uint64_t b_in = f.meta_u64("b_in", path);
  require(b_in >= 1 && b_in <= 4096, path, ": metadata field 'b_in' is ", b_in, ", expected 1 to 4096");
  d.b_in = static_cast<std::size_t>(b_in);
  d.transform.channels = d.arch.channels;
  d.transform.height = d.arch.height;
  d.transform.width = d.arch.width;
  try {
    const auto t = nlohmann::json::parse(f.meta("transform", path));
    const auto& r = t.at("resize");
    require(r.is_number_unsigned() && r.get<std::uint64_t>() <= max_resize, path,
            ": metadata field 'transform': resize is ", r.dump(), ", expected an integer from 0 (none) to ", max_resize);
    d.transform.resize = r.get<std::size_t>();
    for (const char* key : {"mean", "std"}) {
      const auto& v = t.at(key);
      require(v.is_array() && !v.empty() && v.size() <= 4, path, ": metadata field 'transform': ", key, " is ",
              v.dump().substr(0, 80), ", expected a list of 1 to 4 numbers");
      for (const auto& x : v)
        require(x.is_number() && std::isfinite(x.get<double>()) && std::abs(x.get<double>()) <= 1e6, path,
                ": metadata field 'transform': ", key, " holds ", x.dump().substr(0, 40), ", expected finite numbers");
    }
    d.transform.mean = t.at("mean").get<std::vector<float>>();
    d.transform.stddev = t.at("std").get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    nmhash::detail::fail(path, ": metadata field 'transform' is not {\"resize\": N, \"mean\": [...], \"std\": [...]} (",
                         e.what(), ")");
  }
  for (const auto* v : {&d.transform.mean, &d.transform.stddev})
    require(v->size() == 1 || v->size() == d.arch.channels, path, ": metadata field 'transform' has ", v->size(),
            " values for ", d.arch.channels, " channels");
  for (float s : d.transform.stddev)
    require(s > 0 && std::isfinite(s), path, ": metadata field 'transform': standard deviation ", s,
            ", expected a finite number above 0");
  if (f.metadata.count("vote_tie")) {
    const std::string& t = f.metadata.at("vote_tie");
    require(t == "first_child" || t == "summed_output", path, ": metadata field 'vote_tie' is '", t,
            "', expected first_child or summed_output");
    d.tie = parse_vote_tie(t);
  }
  return d;
}

// Turns images into codes with a model file. encode() may be called from
// several threads at once: each call borrows a network replica (made on
// demand from the loaded parameters) and returns it.
template <class T = float>
class encoder {
 public:
  explicit encoder(const std::string& path) : path_(path), weights_(io::load_safetensors(path)) {
    desc_ = read_model_description(weights_, path);
    check_model_tensors(weights_, desc_, path);
    free_.push_back(make_network());
    grouping_ = detail::read_node_of(weights_, desc_.b_in, path);
  }

  const model_description& description() const { return desc_; }
  const neuron_partition& grouping() const { return grouping_; }
  std::size_t bits() const { return grouping_.nodes(); }
  // The input one image must have: (1, C, H, W).
  shape4 input_shape(std::size_t n = 1) const {
    return shape4{n, desc_.arch.channels, desc_.arch.height, desc_.arch.width};
  }

  // Codes of network inputs x, (n, C, H, W), already transformed.
  packed_codes encode(const tensor<T>& x) {
    require(x.shape().rank() == 4 && x.shape()[1] == desc_.arch.channels && x.shape()[2] == desc_.arch.height &&
                x.shape()[3] == desc_.arch.width,
            path_, ": inputs ", x.shape().str(), " do not match the model's input ", desc_.arch.input_str());
    lease net(*this);
    const tensor<T>& y = net->forward(x, false);
    const std::size_t n = x.shape()[0];
    if (desc_.tie == vote_tie::summed_output && !grouping_.is_identity()) {
      const std::size_t k = grouping_.nodes();
      std::vector<T> votes(n * k);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t g = 0; g < k; ++g)
          votes[i * k + g] = node_vote(y.data() + i * desc_.b_in, grouping_.children(g), desc_.tie);
      return pack_signs(votes.data(), n, k);
    }
    const packed_codes raw = pack_signs(y.data(), n, desc_.b_in);
    // Identity groupings list neuron g as node g (canonical order).
    return grouping_.is_identity() ? raw : merge_majority(raw, grouping_.groups());
  }

  // The network's outputs for x, (n, C, H, W) already transformed: n x B_in
  // values before the sign and the NMLayer's vote (for parity checks, and
  // for re-ranking by the continuous embedding).
  tensor<T> outputs(const tensor<T>& x) {
    require(x.shape().rank() == 4 && x.shape()[1] == desc_.arch.channels && x.shape()[2] == desc_.arch.height &&
                x.shape()[3] == desc_.arch.width,
            path_, ": inputs ", x.shape().str(), " do not match the model's input ", desc_.arch.input_str());
    lease net(*this);
    return net->forward(x, false);
  }

  // The outputs of images ids of a source, `chunk` at a time: ids.size() x B_in.
  std::vector<T> outputs(std::shared_ptr<const data::image_source> source, const std::vector<std::size_t>& ids,
                         std::size_t chunk = 256) {
    data::batch_loader<T> loader(std::move(source), desc_.transform);
    std::vector<T> out;
    out.reserve(ids.size() * desc_.b_in);
    tensor<T> x;
    for (std::size_t b = 0; b < ids.size(); b += chunk) {
      loader.load(ids, b, std::min(chunk, ids.size() - b), x);
      const tensor<T> y = outputs(x);
      out.insert(out.end(), y.data(), y.data() + y.size());
    }
    return out;
  }

  // Codes of decoded images, through the model's evaluation transform.
  packed_codes encode(const std::vector<data::image8>& images) {
    tensor<T> x(input_shape(images.size()));
    const std::size_t per = desc_.arch.channels * desc_.arch.height * desc_.arch.width;
    data::image8 work[2];
    for (std::size_t i = 0; i < images.size(); ++i)
      data::transform_image(images[i], desc_.transform, false, 0, x.data() + i * per, work,
                            "image " + std::to_string(i));
    return encode(x);
  }

  // Codes of images ids of a source, `chunk` at a time.
  packed_codes encode(std::shared_ptr<const data::image_source> source, const std::vector<std::size_t>& ids,
                      std::size_t chunk = 256) {
    data::batch_loader<T> loader(std::move(source), desc_.transform);
    packed_codes codes(ids.size(), bits());
    tensor<T> x;
    for (std::size_t b = 0; b < ids.size(); b += chunk) {
      const std::size_t n = std::min(chunk, ids.size() - b);
      loader.load(ids, b, n, x);
      const packed_codes part = encode(x);
      std::copy(part.data(), part.data() + n * codes.words_per_code(), codes.row(b));
    }
    return codes;
  }

 private:
  // A network of the file's architecture with its weights and buffers
  // (batch norm's running statistics): every network the encoder uses.
  std::unique_ptr<nn::sequential<T>> make_network() const {
    auto net = std::make_unique<nn::sequential<T>>();
    try {
      nn::build_hashing_network(*net, desc_.arch, desc_.b_in, 1);
    } catch (const error& e) {
      nmhash::detail::fail(path_, ": metadata field 'arch': ", e.what());
    }
    try {
      nn::load_parameters(weights_, path_, *net);
    } catch (const error& e) {
      nmhash::detail::fail(e.what(), " (the architecture in the metadata does not match the weights)");
    }
    return net;
  }

  struct lease {
    encoder& e;
    std::unique_ptr<nn::sequential<T>> net;
    explicit lease(encoder& enc) : e(enc) {
      {
        std::lock_guard<std::mutex> lock(e.mutex_);
        if (!e.free_.empty()) {
          net = std::move(e.free_.back());
          e.free_.pop_back();
        }
      }
      if (!net) net = e.make_network();
    }
    ~lease() {
      std::lock_guard<std::mutex> lock(e.mutex_);
      e.free_.push_back(std::move(net));
    }
    nn::sequential<T>* operator->() { return net.get(); }
  };

  std::string path_;
  io::safetensors_file weights_;  // the model file: every network loads its weights and buffers from it
  model_description desc_;
  neuron_partition grouping_{1};
  std::mutex mutex_;
  std::vector<std::unique_ptr<nn::sequential<T>>> free_;
};

}  // namespace nmhash::hashing
