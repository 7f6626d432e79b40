// The data-set, architecture and transform options nmhash_train and
// nmhash_reproduce share: --dataset, --data, --root, --arch, --channels,
// --input-size, --resize, --mean, --std, --no-flip, --no-random-crop,
// --no-verify.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/data/open.hpp"
#include "nmhash/nn/arch.hpp"

namespace nmhash_tool {

struct data_options {
  std::string dataset = "fmnist-dpsh", fmnist_dir = nmhash::data::default_fashion_mnist_dir, root, arch;
  std::size_t channels = 0, input_size = 0;  // 0: the architecture's
  long resize = -1;                          // -1: the default
  std::vector<float> mean, stddev;
  bool no_flip = false, no_random_crop = false, no_verify = false;

  void add_options(CLI::App& app) {
    nmhash_tool::add_max_image_pixels(app);
    app.add_option("--data", fmnist_dir, "Fashion-MNIST directory (for --dataset fmnist-dpsh)");
    app.add_option("--dataset", dataset,
                   "data set: fmnist-dpsh (default), fmnist-dpsh:DIR, cifar10:DIR (CIFAR-10 binary batches, DPSH "
                   "split) or list:DIR (train.txt, database.txt, test.txt image lists)");
    app.add_option("--root", root, "image root of list:DIR paths (default: DIR)");
    app.add_option("--arch", arch,
                   "network: lenet, cifar, cnnf, or a layer spec such as conv3p1-32,relu,maxpool2,flatten,fc256,relu "
                   "(default: chosen for the data set's images)");
    app.add_option("--channels", channels, "network input channels, 1 or 3 (default: the architecture's)")
        ->check(CLI::IsMember({1, 3}));
    app.add_option("--input-size", input_size, "network input height and width (default: the architecture's)")
        ->check(nmhash_tool::integer_range(1, 4096));
    app.add_option("--resize", resize,
                   "resize the shorter image edge to this before cropping (0: none; default: none when the images "
                   "have the input size, else 256/224 of it for inputs of 64 or more, the input size below)")
        ->check(nmhash_tool::integer_range(0, 65536));
    app.add_option("--mean", mean, "per-channel mean of pixels / 255 (default: measured on the training images; "
                                     "fmnist-dpsh: the protocol's)")
        ->delimiter(',');
    app.add_option("--std", stddev, "per-channel standard deviation of pixels / 255 (with --mean)")->delimiter(',');
    app.add_flag("--no-flip", no_flip, "no random horizontal flip in training (fmnist-dpsh never flips)");
    app.add_flag("--no-random-crop", no_random_crop, "centre crop in training too");
    app.add_flag("--no-verify", no_verify, "do not decode every image of a list data set before training");
  }

  // The data set; a list data set has every image decoded once unless
  // --no-verify.
  nmhash::data::retrieval_split open() const {
    nmhash::data::dataset_options o;
    o.fashion_mnist_dir = fmnist_dir;
    o.list.root = root;
    o.list.channels = channels ? channels : 3;
    auto split = nmhash::data::open_dataset(dataset, o);
    if (const auto* list = dynamic_cast<const nmhash::data::image_list_source*>(split.pool.get()); list && !no_verify) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto sizes = list->verify();
      std::printf("decoded all %zu images of %s in %.1f s: %s\n", list->size(), dataset.c_str(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), sizes.str().c_str());
    }
    return split;
  }

  // The architecture: --arch (a preset or a spec), or the default for the
  // data set's images; --channels and --input-size change its input.
  nmhash::nn::architecture architecture(const nmhash::data::retrieval_split& split, std::string& why) const {
    nmhash::nn::architecture a;
    const auto shape = split.pool->shape();
    // A list's images, as verify() measured them (nothing with --no-verify).
    const auto* list = dynamic_cast<const nmhash::data::image_list_source*>(split.pool.get());
    const auto sizes = list ? list->measured_sizes() : nmhash::data::image_list_source::image_sizes{};
    const bool small_list = sizes.measured && sizes.max_height <= 64 && sizes.max_width <= 64;
    if (!arch.empty()) {
      if (const auto* p = nmhash::nn::find_architecture(arch)) {
        a = *p;
        why = "--arch " + arch;
      } else {
        a.name = "custom";
        a.layers = arch;
        a.channels = shape.channels ? shape.channels : 3;
        a.height = a.width = shape.fixed() ? shape.height : 224;
        why = "--arch spec";
      }
    } else if (shape.fixed() && shape.channels == 1 && shape.height == 28 && shape.width == 28) {
      a = *nmhash::nn::find_architecture("lenet");
      why = "default for 1x28x28 images";
    } else if (shape.fixed() && shape.height <= 64 && shape.width <= 64) {
      a = *nmhash::nn::find_architecture("cifar");
      a.channels = shape.channels;
      a.height = shape.height;
      a.width = shape.width;
      why = "default for " + shape.str() + " images";
    } else if (small_list) {
      // Small images of several sizes: a small network at the largest side.
      a = *nmhash::nn::find_architecture("cifar");
      a.channels = shape.channels;
      a.height = a.width = std::max<std::size_t>(8, std::max(sizes.max_height, sizes.max_width));  // 3 pools of 2
      why = "default for small images (" + sizes.str() + " in the list): the cifar network at " +
            std::to_string(a.height) + "x" + std::to_string(a.width);
    } else {
      a = *nmhash::nn::find_architecture("cnnf");
      why = "default for images of any size (the paper's CNN-F at 224x224)";
      if (sizes.measured)
        why += "; " + sizes.str() + " in the list";
      else if (list)
        why += "; the images were not measured (--no-verify)";
    }
    if (channels) a.channels = channels;
    if (input_size) a.height = a.width = input_size;
    return a;
  }

  // The input transform: fmnist-dpsh's protocol normalisation, or resize,
  // crop, flip and per-channel statistics (given, or measured on the
  // training images).
  nmhash::data::transform_options transform(const nmhash::data::retrieval_split& split, const nmhash::nn::architecture& a,
                                            const std::vector<std::size_t>& train) const {
    const bool fmnist = nmhash::data::dataset_kind(dataset) == "fmnist-dpsh";
    nmhash::data::transform_options t;
    t.channels = a.channels;
    t.height = a.height;
    t.width = a.width;
    const auto shape = split.pool->shape();
    const bool exact = shape.fixed() && shape.height == a.height && shape.width == a.width;
    t.resize = resize >= 0 ? static_cast<std::size_t>(resize)
               : exact       ? 0
               : a.height >= 64 ? (std::min(a.height, a.width) * 256 + 112) / 224
                                : std::min(a.height, a.width);
    t.random_crop = !fmnist && !no_random_crop;
    t.flip = !fmnist && !no_flip;
    if (!mean.empty() || !stddev.empty()) {
      nmhash::require(!mean.empty() && !stddev.empty(), "--mean and --std go together");
      t.mean = mean;
      t.stddev = stddev;
    } else if (fmnist && a.channels == 1) {
      t.mean = {nmhash::data::fmnist_mean};
      t.stddev = {nmhash::data::fmnist_std};
    } else {
      const nmhash::data::batch_loader<float> probe(split.pool, t);
      const auto stats = probe.channel_statistics(train);
      t.mean = stats.first;
      t.stddev = stats.second;
    }
    return t;
  }
};

inline std::string describe(const nmhash::data::transform_options& t) {
  std::string m, s;
  for (std::size_t c = 0; c < t.mean.size(); ++c) m += (c ? ", " : "") + std::to_string(t.mean[c]);
  for (std::size_t c = 0; c < t.stddev.size(); ++c) s += (c ? ", " : "") + std::to_string(t.stddev[c]);
  return "resize " + std::to_string(t.resize) + ", " + (t.random_crop ? "random" : "centre") + " crop, " +
         (t.flip ? "flip" : "no flip") + ", mean [" + m + "], std [" + s + "]";
}

}  // namespace nmhash_tool
