// What a training run is built from (nmhash::train::run): the data set
// opened and its subsets taken, the network's architecture and input
// transform (given, or the defaults for the data set's images), the
// network itself, and its backbone started from a file (--init-from).
// Needs nmhash::training and nmhash::image.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nmhash/data/batches.hpp"
#include "nmhash/data/image_list.hpp"
#include "nmhash/data/open.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/nn/serialize.hpp"
#include "nmhash/train/config.hpp"

namespace nmhash::train {

// The data set of a run, with what was chosen for it and why.
struct prepared_data {
  data::retrieval_split split;  // the limits of data_config applied
  nn::architecture arch;
  std::string arch_reason;      // "--arch cifar", "default for 1x28x28 images", ...
  data::transform_options transform;
  std::shared_ptr<const data::batch_loader<float>> loader;
  std::string verified;         // a list's images as verify() measured them, and the time (empty otherwise)

  const labels& all_labels() const { return split.pool->labels(); }
};

// The architecture: c.arch (a preset or a layer spec), or the default for
// the data set's images (a list's as verify() measured them); channels and
// input_size change its input. `why` says which rule chose it.
inline nn::architecture choose_architecture(const data_config& c, const data::retrieval_split& split, std::string& why) {
  nn::architecture a;
  const auto shape = split.pool->shape();
  const auto* list = dynamic_cast<const data::image_list_source*>(split.pool.get());
  const auto sizes = list ? list->measured_sizes() : data::image_list_source::image_sizes{};
  const bool small_list = sizes.measured && sizes.max_height <= 64 && sizes.max_width <= 64;
  if (!c.arch.empty()) {
    if (const auto* p = nn::find_architecture(c.arch)) {
      a = *p;
      why = "--arch " + c.arch;
    } else {
      a.name = "custom";
      a.layers = c.arch;
      a.channels = shape.channels ? shape.channels : 3;
      a.height = a.width = shape.fixed() ? shape.height : 224;
      why = "--arch spec";
    }
  } else if (shape.fixed() && shape.channels == 1 && shape.height == 28 && shape.width == 28) {
    a = *nn::find_architecture("lenet");
    why = "default for 1x28x28 images";
  } else if (shape.fixed() && shape.height <= 64 && shape.width <= 64) {
    a = *nn::find_architecture("cifar");
    a.channels = shape.channels;
    a.height = shape.height;
    a.width = shape.width;
    why = "default for " + shape.str() + " images";
  } else if (small_list) {
    // Small images of several sizes: a small network at the largest side.
    a = *nn::find_architecture("cifar");
    a.channels = shape.channels;
    a.height = a.width = std::max<std::size_t>(8, std::max(sizes.max_height, sizes.max_width));  // 3 pools of 2
    why = "default for small images (" + sizes.str() + " in the list): the cifar network at " +
          std::to_string(a.height) + "x" + std::to_string(a.width);
  } else {
    a = *nn::find_architecture("cnnf");
    why = "default for images of any size (the paper's CNN-F at 224x224)";
    if (sizes.measured)
      why += "; " + sizes.str() + " in the list";
    else if (list)
      why += "; the images were not measured (--no-verify)";
  }
  if (c.channels) a.channels = c.channels;
  if (c.input_size) a.height = a.width = c.input_size;
  return a;
}

// The input transform: fmnist-dpsh's protocol normalisation, or resize,
// crop, flip and per-channel statistics (given, or measured on `train`).
inline data::transform_options choose_transform(const data_config& c, const data::retrieval_split& split,
                                                const nn::architecture& a, const std::vector<std::size_t>& train) {
  const bool fmnist = data::dataset_kind(c.dataset) == "fmnist-dpsh";
  data::transform_options t;
  t.channels = a.channels;
  t.height = a.height;
  t.width = a.width;
  const auto shape = split.pool->shape();
  const bool exact = shape.fixed() && shape.height == a.height && shape.width == a.width;
  t.resize = c.resize >= 0     ? static_cast<std::size_t>(c.resize)
             : exact           ? 0
             : a.height >= 64 ? (std::min(a.height, a.width) * 256 + 112) / 224
                               : std::min(a.height, a.width);
  t.random_crop = !fmnist && c.random_crop;
  t.flip = !fmnist && c.flip;
  if (!c.mean.empty() || !c.stddev.empty()) {
    require(!c.mean.empty() && !c.stddev.empty(), "--mean and --std go together");
    t.mean = c.mean;
    t.stddev = c.stddev;
  } else if (fmnist && a.channels == 1) {
    t.mean = {data::fmnist_mean};
    t.stddev = {data::fmnist_std};
  } else {
    const data::batch_loader<float> probe(split.pool, t);
    const auto stats = probe.channel_statistics(train);
    t.mean = stats.first;
    t.stddev = stats.second;
  }
  return t;
}

// Opens the data set (a list's images decoded once unless !c.verify),
// takes the subsets of the limits, and chooses the architecture and the
// transform (statistics measured on the training set T).
inline prepared_data prepare(const data_config& c) {
  prepared_data d;
  data::dataset_options o;
  o.fashion_mnist_dir = c.fmnist_dir;
  o.list.root = c.root;
  o.list.channels = c.channels ? c.channels : 3;
  d.split = data::open_dataset(c.dataset, o);
  if (const auto* list = dynamic_cast<const data::image_list_source*>(d.split.pool.get()); list && c.verify) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto sizes = list->verify();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, " in %.1f s: ", s);
    d.verified = "decoded all " + std::to_string(list->size()) + " images of " + c.dataset + buf + sizes.str();
  }
  auto& sp = d.split;
  sp.train = data::subsample(sp.train, c.train_limit);
  sp.train_nm = data::subsample(sp.train_nm, c.train_limit);
  sp.query = data::subsample(sp.query, c.query_limit);
  sp.database = data::subsample(sp.database, c.db_limit);
  d.arch = choose_architecture(c, sp, d.arch_reason);
  d.transform = choose_transform(c, sp, d.arch, sp.train);
  d.loader = std::make_shared<const data::batch_loader<float>>(sp.pool, d.transform);
  return d;
}

// A one-line description of a transform.
inline std::string describe(const data::transform_options& t) {
  std::string m, s;
  for (std::size_t c = 0; c < t.mean.size(); ++c) m += (c ? ", " : "") + std::to_string(t.mean[c]);
  for (std::size_t c = 0; c < t.stddev.size(); ++c) s += (c ? ", " : "") + std::to_string(t.stddev[c]);
  return "resize " + std::to_string(t.resize) + ", " + (t.random_crop ? "random" : "centre") + " crop, " +
         (t.flip ? "flip" : "no flip") + ", mean [" + m + "], std [" + s + "]";
}

// The network of a run: the backbone of `a`, the head of c (dropout, the
// hashing layer of b_in outputs, or fc_from outputs and a linear layer to
// b_in), and HashNet's scaled tanh; returns that tanh layer (or null).
template <class T>
nn::scaled_tanh<T>* build_network(nn::sequential<T>& net, const run_config& c, const nn::architecture& a) {
  nn::scaled_tanh<T>* tanh_head = nullptr;
  const std::size_t b_in = c.schedule.b_in;
  const auto tanh = [&](nn::sequential<T>& n) {
    if (c.loss == method::hashnet) tanh_head = &n.add(nn::scaled_tanh<T>(1.0));
  };
  if (c.head.dropout <= 0 && !c.head.fc_from) {
    nn::build_hashing_network<T>(net, a, b_in, c.schedule.batch, 0, tanh);
    return tanh_head;
  }
  const std::size_t features = nn::add_backbone(net, a);
  if (c.head.dropout > 0) net.add(nn::dropout<T>(c.head.dropout, c.head.dropout_seed));
  if (c.head.fc_from) {
    net.add(nn::linear<T>(features, c.head.fc_from, nn::init_scheme::xavier_normal));
    net.add(nn::linear<T>(c.head.fc_from, b_in, nn::init_scheme::xavier_normal));
  } else {
    net.add(nn::linear<T>(features, b_in, nn::init_scheme::xavier_normal));
  }
  tanh(net);
  net.build(shape4{c.schedule.batch, a.channels, a.height, a.width});
  return tanh_head;
}

// Copies into net's backbone (its layers before the head, by nn.Sequential
// index) every tensor of `file` whose name and shape match, and lists the
// rest: the head keeps its initialisation. Throws when nothing matches.
template <class T>
nn::load_report load_backbone(nn::sequential<T>& net, const nn::architecture& a, io::safetensors_file file,
                              const std::string& path) {
  // The tensor names (parameters and buffers) of a network.
  const auto names_of = [](nn::sequential<T>& n) {
    std::set<std::string> out;
    nn::for_each_tensor(n, static_cast<T*>(nullptr),
                        [&](std::string name, const std::vector<std::size_t>&, T*, bool) { out.insert(std::move(name)); });
    return out;
  };
  nn::sequential<T> probe;
  nn::add_backbone(probe, a);
  const std::set<std::string> backbone = names_of(probe), all = names_of(net);
  const auto head = [&](const std::string& name) { return all.count(name) && !backbone.count(name); };
  std::vector<std::string> skipped_head;
  for (auto it = file.tensors.begin(); it != file.tensors.end();) {
    if (head(it->first)) {
      skipped_head.push_back(it->first + ": not a backbone tensor (the head keeps its initialisation)");
      it = file.tensors.erase(it);
    } else {
      ++it;
    }
  }
  nn::load_report r = nn::load_matching_parameters(file, net);
  r.skipped.erase(std::remove_if(r.skipped.begin(), r.skipped.end(),
                                 [&](const std::string& s) {
                                   return head(s.substr(0, s.find(": "))) &&
                                          s.find(": not in the file") != std::string::npos;
                                 }),
                  r.skipped.end());
  r.skipped.insert(r.skipped.end(), skipped_head.begin(), skipped_head.end());
  require(!r.loaded.empty(), path, ": no tensor matches a backbone parameter of the ", a.name,
          " network by name and shape");
  return r;
}

}  // namespace nmhash::train
