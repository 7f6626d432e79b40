// Network architectures as data: a backbone is a short spec, a comma-
// separated list of layers, that a model file stores in its metadata and
// from which any program rebuilds the network.
//
//   conv<K>[s<S>][p<P>]-<OUT>[nb]  K x K convolution to OUT channels, stride
//                               S (1), zero padding P (0); nb: no bias
//   bn                          batch normalisation over the channels (or
//                               features, after a flatten), as PyTorch's
//                               BatchNorm2d / BatchNorm1d; its running
//                               statistics are saved with the weights
//   relu
//   maxpool<K>[s<S>][p<P>]      K x K max-pooling, stride S (K), padding P
//                               (0, at most K / 2), floor mode
//   avgpool[<N>]                adaptive average pooling to N x N (1), as
//                               PyTorch's AdaptiveAvgPool2d((N, N))
//   res<OUT>[s<S>]              ResNet's basic block (torchvision's
//                               BasicBlock) to OUT channels, stride S (1),
//                               with the 1 x 1 downsample path where needed
//   bottle<P>[s<S>]             ResNet's bottleneck block (torchvision's
//                               Bottleneck) of P planes, to 4 P channels
//   lrn<N>                      local response normalisation over N channels
//                               (alpha 1e-4, beta 0.75, k 2: AlexNet, CNN-F)
//   dropout<P>                  dropout with probability P in training
//   flatten
//   fc<OUT>                     fully connected to OUT features
//
// The hashing layer (fully connected to B_in outputs, Xavier-normal) follows
// the backbone. Layers are numbered from 0 in spec order, as PyTorch's
// nn.Sequential numbers the same layers, so weights move between the two.
// A layer may be named instead, NAME=LAYER (letters, digits, '_' and '.'),
// e.g. conv1=conv7s2p3-64nb or layer1.0=res64: its tensors are then
// NAME.weight, ..., as in a torchvision model, and in a network that names
// any layer the hashing layer is named "hash".
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/nn/basic_block.hpp"
#include "nmhash/nn/batch_norm2d.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/adaptive_avg_pool2d.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/local_response_norm.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::nn {

struct architecture {
  std::string name;    // a preset's name, or "custom"
  std::string layers;  // the backbone spec
  std::size_t channels = 0, height = 0, width = 0;  // input

  std::string input_str() const {
    return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
  }
};

// The presets: lenet (the fmnist-dpsh backbone, 1 x 28 x 28), cifar (a VGG-
// style network for 3 x 32 x 32), cnnf (Chatfield et al. 2014's CNN-F,
// 3 x 224 x 224: five convolutions, LRN and max-pooling, two 4,096-wide
// fully connected layers), and alexnet, vgg16, resnet18, resnet34 and
// resnet50 (torchvision's, with its parameter names; the hashing layer
// "hash" replaces the classifier's last layer).
namespace detail {

// torchvision's ResNet with `block`s (res or bottle; blocks per stage), under its
// names: conv1, bn1, layer<S>.<B>, and the hashing layer "hash" in place of
// its classifier fc.
inline std::string resnet_spec(const std::vector<int>& blocks, const char* block) {
  std::string s = "conv1=conv7s2p3-64nb,bn1=bn,relu,maxpool3s2p1";
  int planes = 64;
  for (std::size_t stage = 0; stage < blocks.size(); ++stage, planes *= 2)
    for (int b = 0; b < blocks[stage]; ++b)
      s += ",layer" + std::to_string(stage + 1) + "." + std::to_string(b) + "=" + block + std::to_string(planes) +
           (stage > 0 && b == 0 ? "s2" : "");
  return s + ",avgpool,flatten";
}

// torchvision's VGG-16 under its names (features.<i>, classifier.<i>), the
// hashing layer "hash" in place of classifier.6 (AlexNet likewise, below).
inline std::string vgg16_spec() {
  std::string s;
  int index = 0;
  for (int v : {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}) {
    if (v == 0) {
      s += "maxpool2,";
      index += 1;
    } else {
      s += "features." + std::to_string(index) + "=conv3p1-" + std::to_string(v) + ",relu,";
      index += 2;
    }
  }
  return s + "avgpool7,flatten,classifier.0=fc4096,relu,dropout0.5,classifier.3=fc4096,relu,dropout0.5";
}

}  // namespace detail

inline const std::vector<architecture>& architecture_presets() {
  static const std::vector<architecture> presets = {
      {"lenet", "conv5-32,relu,maxpool2,conv5-64,relu,maxpool2,flatten,fc500,relu", 1, 28, 28},
      {"cifar",
       "conv3p1-32,relu,conv3p1-32,relu,maxpool2,conv3p1-64,relu,conv3p1-64,relu,maxpool2,conv3p1-128,relu,maxpool2,"
       "flatten,fc512,relu",
       3, 32, 32},
      {"cnnf",
       "conv11s4-64,relu,lrn5,maxpool3s2,conv5p2-256,relu,lrn5,maxpool3s2,conv3p1-256,relu,conv3p1-256,relu,"
       "conv3p1-256,relu,maxpool3s2,flatten,fc4096,relu,dropout0.5,fc4096,relu,dropout0.5",
       3, 224, 224},
      {"alexnet",
       "features.0=conv11s4p2-64,relu,maxpool3s2,features.3=conv5p2-192,relu,maxpool3s2,features.6=conv3p1-384,relu,"
       "features.8=conv3p1-256,relu,features.10=conv3p1-256,relu,maxpool3s2,avgpool6,flatten,dropout0.5,"
       "classifier.1=fc4096,relu,dropout0.5,classifier.4=fc4096,relu",
       3, 224, 224},
      {"vgg16", detail::vgg16_spec(), 3, 224, 224},
      {"resnet18", detail::resnet_spec({2, 2, 2, 2}, "res"), 3, 224, 224},
      {"resnet34", detail::resnet_spec({3, 4, 6, 3}, "res"), 3, 224, 224},
      {"resnet50", detail::resnet_spec({3, 4, 6, 3}, "bottle"), 3, 224, 224},
  };
  return presets;
}

// A preset by name, or null.
inline const architecture* find_architecture(const std::string& name) {
  for (const auto& a : architecture_presets())
    if (a.name == name) return &a;
  return nullptr;
}

// Parses "CxHxW".
inline void parse_input_shape(const std::string& s, std::size_t& c, std::size_t& h, std::size_t& w) {
  std::uint64_t v[3] = {0, 0, 0};
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t end = i < 2 ? s.find('x', pos) : s.size();
    require(end != std::string::npos && parse_u64(s.substr(pos, end - pos), v[i]) && v[i] >= 1 && v[i] <= 65536,
            "input shape '", s, "': expected CxHxW, e.g. 3x224x224");
    pos = end + 1;
  }
  c = v[0];
  h = v[1];
  w = v[2];
}

namespace detail {

struct layer_token {
  std::string kind, name;  // name: "" for the layer's index
  std::size_t k = 0, stride = 0, pad = 0, out = 0;
  double p = 0;
  bool bias = true;
};

inline layer_token parse_layer_token(std::string t, const std::string& spec) {
  layer_token L;
  if (const auto eq = t.find('='); eq != std::string::npos) {
    L.name = t.substr(0, eq);
    require(!L.name.empty() && L.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") ==
                                   std::string::npos && L.name.front() != '.' && L.name.back() != '.',
            "architecture '", spec, "': layer '", t, "': a name is letters, digits, '_' and inner '.'");
    t = t.substr(eq + 1);
  }
  auto bad = [&](const char* expect) {
    nmhash::detail::fail("architecture '", spec, "': layer '", t, "': expected ", expect);
  };
  auto number = [&](std::size_t& pos, std::size_t& out, const char* expect) {
    std::size_t end = pos;
    while (end < t.size() && t[end] >= '0' && t[end] <= '9') ++end;
    std::uint64_t v = 0;
    if (end == pos || !parse_u64(t.substr(pos, end - pos), v) || v < 1 || v > (1u << 20)) bad(expect);
    out = static_cast<std::size_t>(v);
    pos = end;
  };
  auto starts = [&](const char* p) { return t.rfind(p, 0) == 0; };
  if (t == "relu" || t == "flatten" || t == "bn") {
    L.kind = t;
  } else if (starts("avgpool")) {
    L.kind = "avgpool";
    std::size_t pos = 7;
    L.k = 1;
    if (pos < t.size()) number(pos, L.k, "avgpool[<N>], e.g. avgpool6");
    if (pos != t.size()) bad("avgpool[<N>], e.g. avgpool6");
  } else if (starts("conv")) {
    const char* expect = "conv<K>[s<S>][p<P>]-<OUT>[nb], e.g. conv3p1-64";
    L.kind = "conv";
    std::size_t pos = 4;
    number(pos, L.k, expect);
    L.stride = 1;
    if (pos < t.size() && t[pos] == 's') number(++pos, L.stride, expect);
    if (pos < t.size() && t[pos] == 'p') {
      ++pos;
      if (pos < t.size() && t[pos] == '0') {
        ++pos;
      } else {
        number(pos, L.pad, expect);
      }
    }
    if (pos >= t.size() || t[pos] != '-') bad(expect);
    number(++pos, L.out, expect);
    if (t.compare(pos, std::string::npos, "nb") == 0) {
      L.bias = false;
      pos += 2;
    }
    if (pos != t.size()) bad(expect);
  } else if (starts("maxpool")) {
    const char* expect = "maxpool<K>[s<S>][p<P>] with P at most K / 2, e.g. maxpool3s2p1";
    L.kind = "maxpool";
    std::size_t pos = 7;
    number(pos, L.k, expect);
    L.stride = L.k;
    if (pos < t.size() && t[pos] == 's') number(++pos, L.stride, expect);
    if (pos < t.size() && t[pos] == 'p') number(++pos, L.pad, expect);
    if (pos != t.size() || 2 * L.pad > L.k) bad(expect);
  } else if (starts("res") || starts("bottle")) {
    const bool bottle = starts("bottle");
    const char* expect = bottle ? "bottle<P>[s<S>], e.g. bottle128s2" : "res<OUT>[s<S>], e.g. res128s2";
    L.kind = bottle ? "bottle" : "res";
    std::size_t pos = bottle ? 6 : 3;
    number(pos, L.out, expect);
    L.stride = 1;
    if (pos < t.size() && t[pos] == 's') number(++pos, L.stride, expect);
    if (pos != t.size()) bad(expect);
  } else if (starts("lrn")) {
    L.kind = "lrn";
    std::size_t pos = 3;
    number(pos, L.k, "lrn<N>, e.g. lrn5");
    if (pos != t.size()) bad("lrn<N>, e.g. lrn5");
  } else if (starts("fc")) {
    L.kind = "fc";
    std::size_t pos = 2;
    number(pos, L.out, "fc<OUT>, e.g. fc4096");
    if (pos != t.size()) bad("fc<OUT>, e.g. fc4096");
  } else if (starts("dropout")) {
    L.kind = "dropout";
    try {
      std::size_t used = 0;
      L.p = std::stod(t.substr(7), &used);
      if (used != t.size() - 7 || !(L.p >= 0 && L.p < 1)) bad("dropout<P> with 0 <= P < 1, e.g. dropout0.5");
    } catch (const std::logic_error&) {
      bad("dropout<P> with 0 <= P < 1, e.g. dropout0.5");
    }
  } else {
    bad("one of conv, bn, relu, maxpool, avgpool, res, bottle, lrn, dropout, flatten, fc");
  }
  return L;
}

inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t end = std::min(s.find(',', pos), s.size());
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace detail

// One layer of a backbone with the shapes it sees: what add_backbone adds,
// computed from the spec and the input alone (nothing is allocated).
struct planned_layer {
  detail::layer_token token;
  std::size_t in_c = 0, in_h = 0, in_w = 0;  // the input (in_c = features once flat)
  std::size_t out_c = 0, out_h = 0, out_w = 0;
};

// The layers of `a.layers` for inputs of `a`'s shape, every shape checked:
// a spec that does not fit its input fails with the layer that does not fit.
// `features` receives the flat output size (the backbone must end flat).
inline std::vector<planned_layer> plan_backbone(const architecture& a, std::size_t& features) {
  require(a.channels >= 1 && a.height >= 1 && a.width >= 1, "architecture '", a.name, "': input ", a.input_str());
  std::size_t c = a.channels, h = a.height, w = a.width, flat = 0;
  bool is_flat = false;
  std::vector<planned_layer> plan;
  for (const std::string& t : detail::split_commas(a.layers)) {
    planned_layer P;
    P.token = detail::parse_layer_token(t, a.layers);
    const auto& L = P.token;
    const std::size_t index = plan.size();
    auto where = [&] { return "architecture '" + a.layers + "': layer " + std::to_string(index) + " '" + t + "'"; };
    if (L.kind == "conv" || L.kind == "maxpool" || L.kind == "lrn" || L.kind == "res" || L.kind == "bottle" ||
        L.kind == "avgpool")
      require(!is_flat, where(), " follows a flatten");
    if (!L.name.empty())
      for (const auto& q : plan)
        require(q.token.name != L.name, where(), ": the name '", L.name, "' is taken by an earlier layer");
    P.in_c = is_flat ? flat : c;
    P.in_h = is_flat ? 1 : h;
    P.in_w = is_flat ? 1 : w;
    if (L.kind == "conv") {
      require(h + 2 * L.pad >= L.k && w + 2 * L.pad >= L.k, where(), ": kernel ", L.k, " on a ", h, " x ", w,
              " input with padding ", L.pad);
      c = L.out;
      h = (h + 2 * L.pad - L.k) / L.stride + 1;
      w = (w + 2 * L.pad - L.k) / L.stride + 1;
    } else if (L.kind == "maxpool") {
      require(h + 2 * L.pad >= L.k && w + 2 * L.pad >= L.k, where(), ": window ", L.k, " on a ", h, " x ", w,
              " input with padding ", L.pad);
      h = (h + 2 * L.pad - L.k) / L.stride + 1;
      w = (w + 2 * L.pad - L.k) / L.stride + 1;
    } else if (L.kind == "res" || L.kind == "bottle") {
      c = L.kind == "res" ? L.out : 4 * L.out;
      h = (h - 1) / L.stride + 1;
      w = (w - 1) / L.stride + 1;
    } else if (L.kind == "avgpool") {
      h = w = L.k;
    } else if (L.kind == "flatten") {
      require(!is_flat, where(), ": the input is already flat");
      require(mul_fits(c, h, flat) && mul_fits(flat, w, flat), where(), ": ", c, " x ", h, " x ", w,
              " features overflow");
      is_flat = true;
    } else if (L.kind == "fc") {
      require(is_flat, where(), ": a fully connected layer needs a flatten before it");
      flat = L.out;
    }
    P.out_c = is_flat ? flat : c;
    P.out_h = is_flat ? 1 : h;
    P.out_w = is_flat ? 1 : w;
    plan.push_back(P);
  }
  require(is_flat, "architecture '", a.layers, "': the backbone must end flat (flatten, then optional fc layers)");
  features = flat;
  return plan;
}

// The parameters (nn.Sequential names and shapes) of the network that
// build_hashing_network(a, bits) builds, in order, and the activation
// values one image passes through it: what a model file must hold and what
// building the network will allocate, known before anything is.
struct network_plan {
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameters;
  std::size_t parameter_count = 0;
  std::size_t activations_per_image = 0;  // saturates at SIZE_MAX
};

// The name of layer `index` of a backbone plan ("" when its layers are
// numbered), and of the hashing layer after it.
inline std::string hash_layer_name(const std::vector<planned_layer>& plan) {
  for (const auto& L : plan)
    if (!L.token.name.empty()) return "hash";
  return std::to_string(plan.size());
}

inline network_plan plan_hashing_network(const architecture& a, std::size_t bits) {
  std::size_t features = 0;
  const auto layers = plan_backbone(a, features);
  network_plan p;
  const auto saturate = [](bool fits, std::size_t& v) {
    if (!fits) v = static_cast<std::size_t>(-1);
  };
  // A tensor of the layer named `prefix`; buffers are not parameters.
  const auto tensor = [&](const std::string& prefix, const char* name, std::vector<std::size_t> shape, bool param) {
    std::size_t n = 1;
    for (const auto d : shape) saturate(mul_fits(n, d, n), n);
    if (param) saturate(add_fits(p.parameter_count, n, p.parameter_count), p.parameter_count);
    p.parameters.emplace_back(prefix + "." + name, std::move(shape));
  };
  const auto bn = [&](const std::string& prefix, std::size_t c) {
    tensor(prefix, "weight", {c}, true);
    tensor(prefix, "bias", {c}, true);
    tensor(prefix, "running_mean", {c}, false);
    tensor(prefix, "running_var", {c}, false);
  };
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& L = layers[i];
    const std::string name = L.token.name.empty() ? std::to_string(i) : L.token.name;
    std::size_t out = 0, copies = 1;
    if (L.token.kind == "conv") {
      tensor(name, "weight", {L.token.out, L.in_c, L.token.k, L.token.k}, true);
      if (L.token.bias) tensor(name, "bias", {L.token.out}, true);
    } else if (L.token.kind == "fc") {
      tensor(name, "weight", {L.token.out, L.in_c}, true);
      tensor(name, "bias", {L.token.out}, true);
    } else if (L.token.kind == "bn") {
      bn(name, L.in_c);
    } else if (L.token.kind == "res") {  // torchvision's BasicBlock
      tensor(name, "conv1.weight", {L.token.out, L.in_c, 3, 3}, true);
      bn(name + ".bn1", L.token.out);
      tensor(name, "conv2.weight", {L.token.out, L.token.out, 3, 3}, true);
      bn(name + ".bn2", L.token.out);
      if (L.token.stride != 1 || L.in_c != L.token.out) {
        tensor(name, "downsample.0.weight", {L.token.out, L.in_c, 1, 1}, true);
        bn(name + ".downsample.1", L.token.out);
      }
      copies = 8;  // the block's intermediate tensors, about eight of the output's size
    } else if (L.token.kind == "bottle") {  // torchvision's Bottleneck
      const std::size_t p4 = 4 * L.token.out;
      tensor(name, "conv1.weight", {L.token.out, L.in_c, 1, 1}, true);
      bn(name + ".bn1", L.token.out);
      tensor(name, "conv2.weight", {L.token.out, L.token.out, 3, 3}, true);
      bn(name + ".bn2", L.token.out);
      tensor(name, "conv3.weight", {p4, L.token.out, 1, 1}, true);
      bn(name + ".bn3", p4);
      if (L.token.stride != 1 || L.in_c != p4) {
        tensor(name, "downsample.0.weight", {p4, L.in_c, 1, 1}, true);
        bn(name + ".downsample.1", p4);
      }
      copies = 8;
    }
    saturate(mul_fits(L.out_c, L.out_h, out) && mul_fits(out, L.out_w, out) && mul_fits(out, copies, out), out);
    saturate(add_fits(p.activations_per_image, out, p.activations_per_image), p.activations_per_image);
  }
  const std::string hash = hash_layer_name(layers);
  tensor(hash, "weight", {bits, features}, true);
  tensor(hash, "bias", {bits}, true);
  return p;
}

// Appends the backbone `a.layers` for inputs of `a`'s shape to `net`, and
// returns the number of features it outputs (the backbone must end flat).
// Every shape is checked first (plan_backbone).
template <class T>
std::size_t add_backbone(sequential<T>& net, const architecture& a) {
  std::size_t features = 0;
  const auto plan = plan_backbone(a, features);
  for (std::size_t index = 0; index < plan.size(); ++index) {
    const auto& L = plan[index].token;
    if (L.kind == "conv") {
      net.add(conv2d<T>(plan[index].in_c, L.out, conv2d_options{L.k, L.k, L.stride, L.pad, L.bias}), 0, L.name);
    } else if (L.kind == "maxpool") {
      net.add(max_pool2d<T>(L.k, L.stride, L.pad), 0, L.name);
    } else if (L.kind == "avgpool") {
      net.add(adaptive_avg_pool2d<T>(L.k, L.k), 0, L.name);
    } else if (L.kind == "res") {
      net.add(basic_block<T>(plan[index].in_c, L.out, L.stride), 0, L.name);
    } else if (L.kind == "bottle") {
      net.add(bottleneck_block<T>(plan[index].in_c, L.out, L.stride), 0, L.name);
    } else if (L.kind == "lrn") {
      net.add(local_response_norm<T>(L.k, 1e-4, 0.75, 2.0), 0, L.name);
    } else if (L.kind == "relu") {
      net.add(relu<T>(), 0, L.name);
    } else if (L.kind == "bn") {
      net.add(batch_norm2d<T>(plan[index].in_c), 0, L.name);
    } else if (L.kind == "dropout") {
      net.add(dropout<T>(L.p, 17 + index), 0, L.name);
    } else if (L.kind == "flatten") {
      net.add(flatten<T>(), 0, L.name);
    } else {  // fc
      net.add(linear<T>(plan[index].in_c, L.out), 0, L.name);
    }
  }
  return features;
}

// Builds the backbone of `a` and a hashing layer of `bits` outputs (in
// parameter group `hash_group`) for batches of `batch` images; `head`
// appends layers after the hashing layer (HashNet's scaled tanh).
template <class T>
void build_hashing_network(sequential<T>& net, const architecture& a, std::size_t bits, std::size_t batch,
                           int hash_group = 0, const std::function<void(sequential<T>&)>& head = {}) {
  try {
    std::size_t features = 0;
    const std::string hash = hash_layer_name(plan_backbone(a, features));
    add_backbone(net, a);
    net.add(linear<T>(features, bits, init_scheme::xavier_normal), hash_group, hash == "hash" ? hash : std::string());
    if (head) head(net);
    net.build(shape4{batch, a.channels, a.height, a.width});
  } catch (const std::bad_alloc&) {
    const network_plan p = plan_hashing_network(a, bits);
    nmhash::detail::fail("architecture '", a.name, "' (", a.layers, ") for input ", a.input_str(), ": cannot allocate ",
                         p.parameter_count, " parameters and ", p.activations_per_image, " activations per image x ",
                         batch, " images; lower the input size or the batch");
  }
}

}  // namespace nmhash::nn
