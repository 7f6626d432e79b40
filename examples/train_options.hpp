// What nmhash_train and nmhash_reproduce share: the options of the data set,
// architecture and transform (--dataset, --data, --root, --arch,
// --channels, --input-size, --resize, --mean, --std, --no-flip,
// --no-random-crop, --no-verify) into a train::data_config, the printing
// of what setup chose, and a tool's ranks as a run's.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/train/run.hpp"
#ifdef NMHASH_TOOL_MPI
#include "nmhash/mpi/training.hpp"
#endif

namespace nmhash_tool {

inline void add_data_options(CLI::App& app, nmhash::train::data_config& d) {
  add_max_image_pixels(app);
  app.add_option("--data", d.fmnist_dir, "Fashion-MNIST directory (for --dataset fmnist-dpsh)");
  app.add_option("--dataset", d.dataset,
                 "data set: fmnist-dpsh (default), fmnist-dpsh:DIR, cifar10:DIR (CIFAR-10 binary batches, DPSH "
                 "split) or list:DIR (train.txt, database.txt, test.txt image lists)");
  app.add_option("--root", d.root, "image root of list:DIR paths (default: DIR)");
  app.add_option("--arch", d.arch,
                 "network: lenet, cifar, cnnf, or a layer spec such as conv3p1-32,relu,maxpool2,flatten,fc256,relu "
                 "(default: chosen for the data set's images)");
  app.add_option("--channels", d.channels, "network input channels, 1 or 3 (default: the architecture's)")
      ->check(CLI::IsMember({1, 3}));
  app.add_option("--input-size", d.input_size, "network input height and width (default: the architecture's)")
      ->check(integer_range(1, 4096));
  app.add_option("--resize", d.resize,
                 "resize the shorter image edge to this before cropping (0: none; default: none when the images "
                 "have the input size, else 256/224 of it for inputs of 64 or more, the input size below)")
      ->check(integer_range(0, 65536));
  app.add_option("--mean", d.mean, "per-channel mean of pixels / 255 (default: measured on the training images; "
                                   "fmnist-dpsh: the protocol's)")
      ->delimiter(',');
  app.add_option("--std", d.stddev, "per-channel standard deviation of pixels / 255 (with --mean)")->delimiter(',');
  app.add_flag_function("--no-flip", [&d](std::int64_t) { d.flip = false; },
                        "no random horizontal flip in training (fmnist-dpsh never flips)");
  app.add_flag_function("--no-random-crop", [&d](std::int64_t) { d.random_crop = false; }, "centre crop in training too");
  app.add_flag_function("--no-verify", [&d](std::int64_t) { d.verify = false; },
                        "do not decode every image of a list data set before training");
  auto* limits = app.add_option_group("subsets", "every ceil(n / N)-th image of a set (smoke tests; not the protocol)");
  for (auto [name, field] : {std::pair{"--train-limit", &d.train_limit}, std::pair{"--query-limit", &d.query_limit},
                             std::pair{"--db-limit", &d.db_limit}})
    limits->add_option(name, *field, "at most N images of the set (0 or absent: all)")
        ->check(integer_range(0, UINT32_MAX));
}

// The options of a run both tools take: --seed, --init-from, --alpha and
// --no-resume.
inline void add_run_options(CLI::App& app, nmhash::train::run_config& c) {
  app.add_option("--seed", c.seed, "seed of initialisation, shuffling and child draws (with --seeds: the first)");
  app.add_option("--init-from", c.init_from,
                 "start the backbone from the tensors of this safetensors file whose nn.Sequential name and shape "
                 "match (a model file, or a PyTorch export); the head keeps its initialisation; all are listed")
      ->check(CLI::ExistingFile);
  app.add_option("--alpha", c.loss_settings.alpha, "quantization weight of dpsh, dhn and dsh (0 or more)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag_function("--no-resume", [&c](std::int64_t) { c.resume = false; },
                        "ignore existing checkpoints (and nmhash_reproduce's finished runs) in --out");
}

// Prints what setup chose for the data.
inline void print_prepared(const nmhash::train::prepared_data& d) {
  if (!d.verified.empty()) std::printf("%s\n", d.verified.c_str());
  std::printf("architecture %s (%s): input %s, %s\ntransform: %s\n", d.arch.name.c_str(), d.arch_reason.c_str(),
              d.arch.input_str().c_str(), d.arch.layers.c_str(), nmhash::train::describe(d.transform).c_str());
}

// Prints what --init-from loaded into the run's backbone and skipped.
inline void print_init_report(const nmhash::train::run& r) {
  if (r.config().init_from.empty()) return;
  const auto& report = r.init_report();
  std::printf("--init-from %s: loaded %zu tensors, skipped %zu\n", r.config().init_from.c_str(), report.loaded.size(),
              report.skipped.size());
  for (const auto& skipped : report.skipped) std::printf("  skipped %s\n", skipped.c_str());
}

// The tool's ranks as a training run's.
inline nmhash::train::run_ranks run_ranks_of(const tool_ranks& rk) {
  nmhash::train::run_ranks r;
  r.rank = rk.rank;
  r.ranks = rk.size;
  r.local_rank = rk.local_rank;
  r.share = [rk](std::string& s) { s = rk.share(s); };
  r.read_on_root = [rk](const std::string& path) { return rk.read(path); };
#ifdef NMHASH_TOOL_MPI
  if (rk.comm) r.parallel = nmhash::mpi::data_parallel<float>(*rk.comm);
#endif
  return r;
}

}  // namespace nmhash_tool
