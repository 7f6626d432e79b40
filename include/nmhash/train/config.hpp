// The configuration of one training run (nmhash::train::run): the data
// set and its input pipeline, the network's head, the hashing method, the
// optimizer and the schedule, as one struct of typed fields; and its JSON
// form, written in one place (to_json), which checkpoints carry so that a
// run resumes only the training it describes, whichever program started it.
// Needs nmhash::training (nlohmann-json).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/core/error.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#include "nmhash/hashing/schedule.hpp"
#include "nmhash/loss/classify.hpp"
#include "nmhash/loss/registry.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::train {

// The hashing methods (their pairwise losses, loss/registry.hpp), and
// classify: cross-entropy on one output per class, to pretrain a backbone.
enum class method { dpsh, eq7, dhn, hashnet, dsh, classify };

inline const char* to_string(method m) {
  switch (m) {
    case method::dpsh: return "dpsh";
    case method::eq7: return "eq7";
    case method::dhn: return "dhn";
    case method::hashnet: return "hashnet";
    case method::dsh: return "dsh";
    case method::classify: return "classify";
  }
  return "?";
}

inline const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"dpsh", "eq7", "dhn", "hashnet", "dsh", "classify"};
  return names;
}

inline method parse_method(const std::string& s) {
  for (method m : {method::dpsh, method::eq7, method::dhn, method::hashnet, method::dsh, method::classify})
    if (s == to_string(m)) return m;
  nmhash::detail::fail("method '", s, "' is not one of dpsh, eq7, dhn, hashnet, dsh, classify");
}

// The loss of method m (the registry's, or classify's).
template <class T>
loss::loss_fn<T> loss_of(method m, const loss::loss_settings& s) {
  if (m == method::classify)
    return [](const auto& u, const auto& idx, const auto& bank, auto& du) { return loss::classify(u, idx, bank, du); };
  return loss::loss_by_name<T>(to_string(m), s);
}

// How a run's weights start: kaiming, each layer's own scheme (convolutions
// and hidden linear layers He normal, the hashing layer Xavier normal,
// biases zero); pytorch, every convolution and linear layer as PyTorch's
// nn.Conv2d and nn.Linear start (nn::init_scheme::pytorch_default), whose
// smaller outputs suit training from scratch on a small list.
enum class weight_init { kaiming, pytorch };

inline const char* to_string(weight_init w) { return w == weight_init::kaiming ? "kaiming" : "pytorch"; }

inline weight_init parse_weight_init(const std::string& s) {
  if (s == "kaiming") return weight_init::kaiming;
  if (s == "pytorch") return weight_init::pytorch;
  nmhash::detail::fail("weight initialisation '", s, "' is not one of kaiming, pytorch");
}

enum class device_kind { cpu, cuda };
inline const char* to_string(device_kind d) { return d == device_kind::cpu ? "cpu" : "cuda"; }

// The data set and how its images become network inputs. Empty or zero
// fields take the defaults that setup.hpp chooses from the data set.
struct data_config {
  std::string dataset = "fmnist-dpsh";  // fmnist-dpsh, fmnist-dpsh:DIR, cifar10:DIR, list:DIR
  std::string fmnist_dir = data::default_fashion_mnist_dir;  // of plain fmnist-dpsh
  std::string root;                     // image root of list:DIR paths (default DIR)
  std::string arch;                     // preset or layer spec (default: chosen for the images)
  std::size_t channels = 0, input_size = 0;  // 0: the architecture's
  long resize = -1;                     // shorter edge before cropping; -1: the default
  std::vector<float> mean, stddev;      // per channel on pixels / 255; empty: the default
  bool flip = true, random_crop = true;  // training augmentation (never on fmnist-dpsh)
  bool verify = true;                   // decode every image of a list once, before training
  // At most this many images of each set (0: all), every ceil(n / limit)-th
  // one, which keeps the class balance of class-ordered splits.
  std::size_t train_limit = 0, query_limit = 0, db_limit = 0;
};

// Layers between the backbone and the hashing layer, and after it.
struct head_config {
  double dropout = 0;              // dropout probability before the hashing layer (0: none)
  std::uint64_t dropout_seed = 0;  // its mask stream
  std::size_t fc_from = 0;         // > 0: a hashing layer of fc_from outputs, then a linear fc_from -> bits
};

// Optimizer steps of one epoch: batches of `batch` over the training
// images, the last one partial.
inline std::size_t steps_per_epoch(std::size_t train_images, std::size_t batch) {
  return (train_images + batch - 1) / std::max<std::size_t>(1, batch);
}

// What nmhash_train takes on an image list (list:DIR) where the command
// line sets none of them, in place of the fmnist-dpsh defaults (Adam 1e-4,
// batch 128, kaiming): chosen by measurement on small lists of 32x32
// pictures, single- and multi-label, over 3 seeds (docs/datasets.md,
// scripts/list_defaults.sh). They are DeepHash-pytorch's DPSH settings.
struct list_defaults {
  static constexpr optim::optimizer_kind optimizer = optim::optimizer_kind::rmsprop;
  static constexpr double lr = 1e-5;
  static constexpr std::size_t batch = 64;
  static constexpr weight_init init = weight_init::pytorch;
  // From PyTorch's initialisation at this rate the loss stays flat for
  // about the first 300 optimizer steps, and 20 epochs of a 500-image list
  // (160 steps) leave every code equal; so the default epoch count is 20,
  // or as many as make min_steps steps.
  static constexpr std::size_t min_steps = 800;
  static std::size_t epochs(std::size_t train_images, std::size_t batch) {
    const std::size_t per_epoch = std::max<std::size_t>(1, steps_per_epoch(train_images, batch));
    return std::max<std::size_t>(20, (min_steps + per_epoch - 1) / per_epoch);
  }
};

struct run_config {
  data_config data;
  method loss = method::dpsh;
  loss::loss_settings loss_settings;  // dsh's margin 0: 2 K of the current code
  // The optimizer, batch, learning rates and epochs: warmup_epochs at b_in
  // bits, then (lengths not empty) the stages of the NMLayer's progressive
  // reduction to each of `lengths` (schedule.hpp).
  hashing::progressive_schedule schedule = fixed_schedule(48, 20);
  hashing::reduction reduction = hashing::reduction::merge;
  head_config head;
  weight_init init = weight_init::kaiming;
  std::string init_from;  // start the backbone from this safetensors file's matching tensors
  std::uint64_t seed = 1;
  device_kind device = device_kind::cpu;
  bool resume = true;  // continue from the run directory's checkpoint

  // A fixed-length schedule: `epochs` epochs at `bits` bits, nothing merged.
  static hashing::progressive_schedule fixed_schedule(std::size_t bits, std::size_t epochs) {
    hashing::progressive_schedule s;
    s.name = "fixed";
    s.b_in = bits;
    s.lengths.clear();
    s.warmup_epochs = epochs;
    return s;
  }
  bool progressive() const { return !schedule.lengths.empty(); }
  // The code length the run ends with.
  std::size_t bits() const { return progressive() ? schedule.lengths.back() : schedule.b_in; }
};

namespace detail {

// The fields of a schedule's progressive stages.
inline nlohmann::json stage_fields(const hashing::progressive_schedule& s) {
  return {{"lengths", s.lengths},
          {"m", s.merges},
          {"n0", s.active_epochs},
          {"n1", s.frozen_epochs},
          {"nm_lr", s.nm_lr},
          {"frozen_weight", s.frozen_weight},
          {"gradient", to_string(s.gradient)},
          {"truncation", to_string(s.truncation)},
          {"validation_refresh", s.validation_refresh},
          {"vote_tie", to_string(s.tie)},
          {"bank_after_truncation", to_string(s.bank_after_truncation)},
          {"reset_optimizer", s.reset_optimizer}};
}

}  // namespace detail

// The schedule's fields, every one (for reports).
inline nlohmann::json to_json(const hashing::progressive_schedule& s) {
  nlohmann::json j = detail::stage_fields(s);
  j.update({{"name", s.name},
            {"b_in", s.b_in},
            {"warmup_epochs", s.warmup_epochs},
            {"batch", s.batch},
            {"optimizer", optim::to_string(s.optimizer)},
            {"backbone_lr", s.backbone_lr},
            {"weight_decay", s.weight_decay},
            {"eta", s.eta}});
  return j;
}

// What the trained state of a run depends on: the fields that change a
// single weight. Two configurations with equal JSON train the same network
// from the same checkpoint; names, devices, limits on the evaluation sets
// and the resume flag are not part of it. `input`, `transform` and
// `train_images` are the values setup resolved (setup.hpp).
inline nlohmann::json to_json(const run_config& c, const std::string& arch_layers, const std::string& input,
                              const data::transform_options& t, std::size_t train_images) {
  const auto& s = c.schedule;
  nlohmann::json m = {{"name", to_string(c.loss)}};
  switch (c.loss) {
    case method::dpsh:
    case method::dhn: m["alpha"] = c.loss_settings.alpha; break;
    case method::eq7: m["eta"] = c.loss_settings.eta; break;
    case method::hashnet: m["hashnet_alpha"] = c.loss_settings.hashnet_alpha; break;
    case method::dsh:
      m["alpha"] = c.loss_settings.alpha;
      m["margin"] = c.loss_settings.margin;
      break;
    case method::classify: break;
  }
  nlohmann::json opt = {{"name", optim::to_string(s.optimizer)},
                        {"lr", s.backbone_lr},
                        {"weight_decay", s.weight_decay},
                        {"batch", s.batch}};
  if (s.optimizer == optim::optimizer_kind::sgd) opt["momentum"] = s.momentum;
  nlohmann::json sched = {{"b_in", s.b_in}, {"warmup_epochs", s.warmup_epochs}};
  if (c.progressive()) {
    sched["progressive"] = detail::stage_fields(s);
    sched["progressive"]["reduction"] = to_string(c.reduction);
  }
  nlohmann::json head = nlohmann::json::object();
  if (c.head.dropout > 0) head["dropout"] = {{"p", c.head.dropout}, {"seed", c.head.dropout_seed}};
  if (c.head.fc_from) head["fc_from"] = c.head.fc_from;
  nlohmann::json j = {{"data",
           {{"dataset", c.data.dataset},
            {"arch", arch_layers},
            {"input", input},
            {"transform",
             {{"resize", t.resize}, {"random_crop", t.random_crop}, {"flip", t.flip}, {"mean", t.mean}, {"std", t.stddev}}},
            {"train_images", train_images},
            {"train_limit", c.data.train_limit}}},
          {"init_from", c.init_from},
          {"head", head},
          {"method", m},
          {"optimizer", opt},
          {"schedule", sched},
          {"seed", c.seed}};
  // Written where it is not the default, so that earlier checkpoints of
  // kaiming runs keep their identity.
  if (c.init != weight_init::kaiming) j["init"] = to_string(c.init);
  return j;
}

}  // namespace nmhash::train
