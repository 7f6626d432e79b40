// nmhash_train: one training run of the library (nmhash::train::run) from
// the command line: a hashing network (lenet on fmnist-dpsh by default)
// with a pairwise hashing loss on a data set (fmnist-dpsh, cifar10:DIR,
// list:DIR), at a fixed code length or, with --reduce-from B_in, reduced
// progressively to --bits (section 3.6 of the NMLayer paper: --reduction
// merge, the NMLayer, or select). It evaluates the query codes against the
// database in both tie conventions and writes, as one set, the model file,
// the codes and labels (.npy) and summary.json into --out. Every epoch
// ends with a checkpoint that a killed run, or nmhash_reproduce with the
// same configuration, resumes. --device cuda trains on a GPU; under
// mpirun the run is data parallel (docs/scaling.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "train_options.hpp"
#include "tool_common.hpp"
#include "nmhash/train/run.hpp"

namespace {

namespace tr = nmhash::train;
using clock_type = std::chrono::steady_clock;

struct options {
  tr::run_config c;
  std::string method = "dpsh", optimizer, init, device = "cpu", reduction = "merge", vote_tie = "first_child",
              bank = "recompute", out;
  std::size_t bits = 48, epochs = 20, reduce_from = 0;
  long map_at = -1;  // -1: the default
  bool lr_given = false, batch_given = false, epochs_given = false;
};

// A one-line progress bar on a terminal, otherwise nothing until the epoch's
// summary line.
void progress(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, double loss, double rate) {
  if (!isatty(fileno(stderr))) return;
  const int width = 30, filled = static_cast<int>(width * done / (total ? total : 1));
  std::fprintf(stderr, "\r[epoch %zu/%zu] [%.*s%*s] %3zu%% loss %.4f %6.0f img/s", epoch, epochs, filled,
               "##############################", width - filled, "", 100 * done / (total ? total : 1), loss, rate);
  std::fflush(stderr);
}

int run(options& o, const nmhash_tool::tool_ranks& rk) {
  const auto t0 = clock_type::now();
  tr::run_config& c = o.c;
  c.loss = tr::parse_method(o.method);
  c.device = o.device == "cuda" ? tr::device_kind::cuda : tr::device_kind::cpu;
  auto& s = c.schedule;
  // On an image list, what the command line leaves unset takes the list
  // defaults (config.hpp); elsewhere the fmnist-dpsh ones.
  const bool list = nmhash::data::dataset_kind(c.data.dataset) == "list";
  std::string unset;
  const auto list_default = [&](bool given, const char* option, auto& field, auto value) {
    if (given || !list) return;
    field = value;
    unset += std::string(unset.empty() ? "" : ", ") + option;
  };
  list_default(!o.optimizer.empty(), "--optimizer", s.optimizer, tr::list_defaults::optimizer);
  list_default(o.lr_given, "--lr", s.backbone_lr, tr::list_defaults::lr);
  list_default(o.batch_given, "--batch", s.batch, tr::list_defaults::batch);
  list_default(!o.init.empty(), "--init", c.init, tr::list_defaults::init);
  if (!o.optimizer.empty()) s.optimizer = nmhash::optim::parse_optimizer_kind(o.optimizer);
  if (!o.init.empty()) c.init = tr::parse_weight_init(o.init);
  s.b_in = o.reduce_from ? o.reduce_from : o.bits;
  if (o.reduce_from) {
    nmhash::require(o.reduce_from > o.bits, "--reduce-from ", o.reduce_from, " must exceed --bits ", o.bits);
    s.name = "progressive";
    s.lengths = {o.bits};
    s.tie = nmhash::hashing::parse_vote_tie(o.vote_tie);
    s.bank_after_truncation = nmhash::hashing::parse_bank_remap(o.bank);
    c.reduction = o.reduction == "merge" ? nmhash::hashing::reduction::merge : nmhash::hashing::reduction::select;
  }
  const tr::prepared_data data = tr::prepare(c.data);
  nmhash_tool::print_prepared(data);
  const std::size_t train_images = (o.reduce_from ? data.split.train_nm : data.split.train).size();
  list_default(o.epochs_given, "--epochs", o.epochs, tr::list_defaults::epochs(train_images, s.batch));
  s.warmup_epochs = o.epochs;
  const std::size_t steps = o.epochs * tr::steps_per_epoch(train_images, s.batch);
  if (list && !o.lr_given && o.optimizer.empty() && steps < tr::list_defaults::min_steps)
    std::printf("WARNING: %zu epochs of %zu images are %zu optimizer steps; at a list's default rate the codes barely "
                "move in the first few hundred (docs/datasets.md): give %zu steps or more, or a higher --lr\n",
                o.epochs, train_images, steps, tr::list_defaults::min_steps);
  tr::run r(c, data, o.out, nmhash_tool::run_ranks_of(rk));
  nmhash_tool::print_init_report(r);
  if (r.resumed_epochs()) std::fprintf(stderr, "resuming from %s after epoch %zu\n", r.checkpoint_path().c_str(), r.resumed_epochs());
  std::string device = r.device_name();
  if (rk.size > 1) device += ", data parallel over " + std::to_string(rk.size) + " ranks";
  std::printf("%s %s, %s loss, K = %zu, %s lr %g, batch %zu, %zu epochs, %s initialisation, seed %llu, on %s: %zu "
              "training images\n",
              c.data.dataset.c_str(), data.arch.name.c_str(), o.method.c_str(), o.bits,
              nmhash::optim::to_string(s.optimizer), s.backbone_lr, s.batch, o.epochs, tr::to_string(c.init),
              static_cast<unsigned long long>(c.seed), device.c_str(), r.train_ids().size());
  if (!unset.empty()) std::printf("(%s: the defaults of an image list, docs/datasets.md)\n", unset.c_str());
  const std::size_t epochs = r.plan().size();
  if (o.reduce_from)
    std::printf("progressive (%s) from %zu bits: %zu warm-up epochs, then %zu stages of %zu active and %zu frozen "
                "epochs (m = %zu, %zu validation images score the bits), %zu epochs in all\n",
                o.reduction.c_str(), s.b_in, o.epochs, nmhash::hashing::stage_targets(s).size(), s.active_epochs,
                s.frozen_epochs, s.merges, data.split.validation.size(), epochs);
  r.on_batch = [&](const nmhash::hashing::epoch_record& e, std::size_t done, std::size_t total) {
    progress(e.epoch, epochs, done, total, e.loss, static_cast<double>(done) / e.seconds);
  };
  double train_seconds = 0;
  r.on_epoch = [&](const tr::epoch_report& e) {
    train_seconds += e.record.seconds;
    if (isatty(fileno(stderr))) std::fprintf(stderr, "\n");
    std::printf("epoch %zu/%zu  %s K=%zu  loss %.5f  %.1f s  %.0f img/s\n", e.epochs_done, e.epochs,
                nmhash::hashing::to_string(e.record.phase), e.nodes, e.record.loss, e.record.seconds,
                static_cast<double>(r.train_ids().size()) / e.record.seconds);
    std::fflush(stdout);
  };
  r.train();

  // MAP@k: --map-at, or k = 5,000 on multi-label data (DeepHash-pytorch's
  // NUS-WIDE and COCO setting), capped at the database size.
  const bool multi = data.all_labels().is_multi();
  const std::size_t map_k = o.map_at >= 0 ? static_cast<std::size_t>(o.map_at) : multi ? 5000 : 0;
  const auto ev = r.evaluate(map_k ? std::vector<std::size_t>{map_k} : std::vector<std::size_t>{});
  const auto& m = ev.metrics;
  if (!rk.root()) return 0;  // rank 0 writes
  double accuracy = -1;
  if (c.loss == tr::method::classify && !multi) {
    accuracy = r.query_accuracy();
    std::printf("classifier top-1 accuracy on the queries %.4f (the codes below are the signs of the logits)\n",
                accuracy);
  }
  std::printf("MAP tie-aware %.4f  index-order %.4f  precision r<=2 %.4f  distinct database codes %zu (largest group "
              "%.1f%%)\n",
              m.map.tie_aware, m.map.index_order, m.within_radius.precision, ev.spread.distinct,
              100 * ev.spread.largest_share);
  nlohmann::json map_at = nlohmann::json::array();
  for (std::size_t a = 0; a < m.map_at_k.size(); ++a) {
    std::printf("MAP@%zu tie-aware %.4f  index-order %.4f\n", m.map_at_k[a], m.map_at[a].tie_aware,
                m.map_at[a].index_order);
    map_at.push_back({{"k", m.map_at_k[a]}, {"tie_aware", m.map_at[a].tie_aware}, {"index_order", m.map_at[a].index_order}});
  }
  if (ev.spread.collapsed())
    std::printf("WARNING: the codes have collapsed (%zu distinct database codes, %.1f%% share one code): "
                "lower the learning rate or change the optimizer\n",
                ev.spread.distinct, 100 * ev.spread.largest_share);
  nlohmann::json summary = {
      {"protocol", c.data.dataset}, {"dataset", c.data.dataset}, {"model", data.arch.name},
      {"arch", data.arch.layers}, {"input", data.arch.input_str()}, {"labels", multi ? "multi" : "single"},
      {"classes", data.split.pool->num_classes()}, {"loss", o.method}, {"bits", o.bits}, {"settings", r.identity()},
      {"b_in", s.b_in}, {"grouping", r.grouping().str()},
      {"map", {{"tie_aware", m.map.tie_aware}, {"index_order", m.map.index_order}}}, {"map_at", map_at},
      {"device", r.device_name()}, {"optimizer", nmhash::optim::to_string(s.optimizer)},
      {"init", tr::to_string(c.init)}, {"lr", s.backbone_lr},
      {"weight_decay", s.weight_decay}, {"batch", s.batch}, {"epochs", epochs}, {"seed", c.seed},
      {"train_images", r.train_ids().size()}, {"queries", ev.query.size()}, {"database", ev.database.size()},
      {"map_tie_aware", m.map.tie_aware}, {"map_index_order", m.map.index_order},
      {"precision_within_radius_2", m.within_radius.precision}, {"distinct_database_codes", ev.spread.distinct},
      {"largest_code_share", ev.spread.largest_share}, {"collapsed", ev.spread.collapsed()},
      {"train_seconds_this_run", train_seconds}, {"eval_seconds", ev.seconds},
      {"wall_seconds", std::chrono::duration<double>(clock_type::now() - t0).count()}, {"history", r.history()}};
  if (accuracy >= 0) summary["query_accuracy"] = accuracy;
  r.write_results(ev, summary);
  std::printf("wrote %s/{summary.json, model.safetensors, query_codes.npy, db_codes.npy, *_labels.npy}\n",
              o.out.c_str());
  return 0;
}

int run_tool(int argc, char** argv, const nmhash_tool::mpi_session& session) {
  CLI::App app{"nmhash_train: fixed-length deep hashing on a data set (fmnist-dpsh, cifar10:DIR, list:DIR)"};
  options o;
  auto& c = o.c;
  auto& s = c.schedule;
  app.add_option("--method,--loss", o.method,
                 "hashing method (its pairwise loss): dpsh, eq7, dhn, hashnet, dsh; or classify, cross-entropy on "
                 "--bits = the number of classes, to pretrain a backbone for --init-from")
      ->check(CLI::IsMember(tr::method_names()));
  app.add_option("--bits", o.bits, "code length K")->check(CLI::Range(1, 4096));
  app.add_option("--epochs", o.epochs,
                 "training epochs, 1 or more (with --reduce-from: the warm-up epochs at B_in; default 20, on an image "
                 "list 20 or as many as make 800 steps)")
      ->check(nmhash_tool::integer_range(1, 1000000));
  app.add_option("--batch", s.batch, "batch size, 1 to 65536 (default 128; on an image list 64)")
      ->check(nmhash_tool::integer_range(1, 65536));
  app.add_option("--device", o.device,
                 "where to train: cpu, or cuda (the first CUDA device; under mpirun one per rank, over NCCL)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--optimizer", o.optimizer, "optimizer (default adam; on an image list rmsprop)")
      ->check(CLI::IsMember({"adam", "sgd", "rmsprop"}));
  app.add_option("--lr", s.backbone_lr, "learning rate, positive (default 1e-4; on an image list 1e-5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--init", o.init,
                 "how the weights start: kaiming (He normal, the hashing layer Xavier normal; the default) or "
                 "pytorch (as PyTorch's nn.Conv2d and nn.Linear; the default on an image list)")
      ->check(CLI::IsMember({"kaiming", "pytorch"}));
  app.add_option("--weight-decay", s.weight_decay, "L2 weight decay (0 or more)")->check(CLI::NonNegativeNumber);
  app.add_option("--momentum", s.momentum, "SGD momentum, 0 to 1")->check(CLI::Range(0.0, 1.0));
  app.add_option("--hashnet-alpha", c.loss_settings.hashnet_alpha, "HashNet's sigmoid scale (theta = alpha h . H)")
      ->check(CLI::PositiveNumber);
  app.add_option("--margin", c.loss_settings.margin, "DSH margin (0 or absent: 2 K)")->check(CLI::NonNegativeNumber);
  app.add_option("--eta", c.loss_settings.eta, "Eq. (7) quantization weight (0 or more)")->check(CLI::NonNegativeNumber);
  auto* prog = app.add_option_group("progressive", "train from more bits down to --bits (the NMLayer or Select)");
  prog->add_option("--reduce-from", o.reduce_from,
                   "B_in: train --epochs warm-up epochs at this many bits on T', then reduce to --bits in stages "
                   "(0 or absent: a fixed-length run)")
      ->check(nmhash_tool::integer_range(0, 4096));
  prog->add_option("--reduction", o.reduction,
                   "how a stage reduces the code: merge (the NMLayer: learned merges, majority vote) or select "
                   "(drop the least important bits)")
      ->check(CLI::IsMember({"merge", "select"}));
  s.merges = 8;
  s.active_epochs = s.frozen_epochs = 1;
  prog->add_option("--merges", s.merges, "m, nodes removed per stage")->check(nmhash_tool::integer_range(1, 4096));
  prog->add_option("--active-epochs", s.active_epochs, "N0, scoring epochs per stage")
      ->check(nmhash_tool::integer_range(1, 1000000));
  prog->add_option("--frozen-epochs", s.frozen_epochs, "N1, epochs after each truncation")
      ->check(nmhash_tool::integer_range(0, 1000000));
  prog->add_option("--nm-lr", s.nm_lr, "learning rate of the NMLayer's adjacency A")->check(CLI::PositiveNumber);
  prog->add_option("--frozen-weight", s.frozen_weight, "weight of the frozen-phase loss")->check(CLI::NonNegativeNumber);
  prog->add_option("--vote-tie", o.vote_tie, "tie rule of an even node's vote: first_child or summed_output")
      ->check(CLI::IsMember({"first_child", "summed_output"}));
  prog->add_option("--bank-after-truncation", o.bank,
                   "memory bank after a stage's truncation: recompute (re-encode every training image) or "
                   "mean_columns (the mean of the merged nodes' columns)")
      ->check(CLI::IsMember({"recompute", "mean_columns"}));
  nmhash_tool::add_data_options(app, c.data);
  nmhash_tool::add_run_options(app, c);
  app.add_option("--map-at", o.map_at, "also report MAP@k for this k (0: none; default 5000 on multi-label data)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--out", o.out, "output directory (default results/train-METHOD-KBITS)");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  o.lr_given = app.count("--lr") > 0;
  o.epochs_given = app.count("--epochs") > 0;
  o.batch_given = app.count("--batch") > 0;
  if (o.out.empty()) o.out = "results/train-" + o.method + "-" + std::to_string(o.bits);
  nmhash_tool::tool_ranks rk;
  try {
    rk = nmhash_tool::ranks_of(session);
    return run(o, rk);
  } catch (const std::exception& e) {
#ifdef NMHASH_TOOL_MPI
    if (rk.comm) return nmhash_tool::mpi_error(*rk.comm, "nmhash_train", e);
#endif
    std::fprintf(stderr, "nmhash_train: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(false);
  const nmhash_tool::mpi_session session(argc, argv);
  return nmhash_tool::finish("nmhash_train", run_tool(argc, argv, session));
}
