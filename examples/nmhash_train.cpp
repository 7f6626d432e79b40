// nmhash_train: trains a hashing network (an architecture spec, lenet on
// fmnist-dpsh by default) with a pairwise hashing loss at a fixed code
// length on a data set (fmnist-dpsh, cifar10:DIR or an image-list folder
// list:DIR), evaluates query codes against the database in both tie
// conventions, and writes a JSON summary, the model file (architecture,
// weights, input transform: what nmhash_encode and hashing::encoder load),
// and the codes and labels (.npy, readable by nmhash_eval).
// With --reduce-from B_in the run is progressive (section 3.6 of the NMLayer
// paper): --epochs warm-up epochs at B_in bits on T', then stages of
// --active-epochs and --frozen-epochs that take the code down to --bits by
// merging nodes (--reduction merge, the NMLayer) or by dropping the least
// important ones (--reduction select), V scoring the bits.
// Every epoch ends with an atomic checkpoint; a killed run resumes from it.
// --device cuda trains on the GPU (nmhash_train_cuda.cu) with the same
// network, loss, optimizer and checkpoints.
// Under mpirun (built with MPI) the run is data parallel: each rank runs the
// network on its share of every batch (progressive_trainer's
// data_parallel), every rank reads the images it needs, rank 0 prints,
// writes the checkpoints and the outputs, and a checkpoint resumes on any
// number of ranks. With --device cuda each rank takes one GPU of its node
// and the ranks gather outputs and sum gradients over NCCL.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "data_options.hpp"
#include "tool_common.hpp"
#include "nmhash/data/batches.hpp"
#include "nmhash/data/open.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#include "nmhash/loss/classify.hpp"
#include "nmhash/loss/registry.hpp"
#include "nmhash/nmhash.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/nn/serialize.hpp"
#include "nmhash/optim/adam.hpp"
#include "nmhash/optim/rmsprop.hpp"
#include "nmhash/optim/sgd.hpp"
#include "nmhash_train_cuda.hpp"
#ifdef NMHASH_TOOL_MPI
#include "nmhash/mpi/metrics.hpp"
#include "nmhash/mpi/training.hpp"
#endif

namespace {

using clock_type = std::chrono::steady_clock;
using real = float;

struct options {
  std::string loss = "dpsh", optimizer = "adam", device = "cpu", out, init_from;
  nmhash_tool::data_options data;
  std::size_t bits = 48, epochs = 20, batch = 128, train_limit = 0, query_limit = 0, db_limit = 0;
  long map_at = -1;  // -1: the default
  double lr = 1e-4, weight_decay = 1e-5, momentum = 0.9, alpha = 0.1, eta = 1200;
  double hashnet_alpha = nmhash::loss::hashnet_defaults::alpha, margin = 0;  // margin 0: 2 K
  std::uint64_t seed = 1;
  bool resume = true;
  // Progressive runs (reduce_from > 0).
  std::size_t reduce_from = 0, merges = 8, active_epochs = 1, frozen_epochs = 1;
  std::string reduction = "merge", vote_tie = "first_child", bank = "recompute";
  double nm_lr = 1e-2, frozen_weight = 0.25;
};

// Takes the first `limit` entries (all when 0).
std::vector<std::size_t> head(std::vector<std::size_t> v, std::size_t limit) {
  if (limit && limit < v.size()) v.resize(limit);
  return v;
}

// A one-line progress bar on a terminal, otherwise nothing until the epoch's
// summary line.
void progress(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, double loss,
              double rate) {
  if (!isatty(fileno(stderr))) return;
  const int width = 30, filled = static_cast<int>(width * done / (total ? total : 1));
  std::fprintf(stderr, "\r[epoch %zu/%zu] [%.*s%*s] %3zu%% loss %.4f %6.0f img/s", epoch, epochs, filled,
               "##############################", width - filled, "", 100 * done / (total ? total : 1), loss,
               rate);
  std::fflush(stderr);
}

// Class ids as int32 (N), multi-hot labels as a 0/1 uint8 matrix (N, C).
void write_labels_npy(nmhash::io::atomic_file& f, const nmhash::labels& l) {
  if (l.is_multi()) {
    const auto m = l.multi_hot_matrix();
    nmhash::io::write_npy(f, m.data(), {l.size(), l.num_labels()});
  } else {
    nmhash::io::write_npy(f, l.ids(), {l.size()});
  }
}

nmhash::optim::group_table optimizer_groups(const options& o) { return {{}, {o.lr, o.weight_decay}}; }

using ranks = nmhash_tool::tool_ranks;

// The checkpoint, read by rank 0 and handed to every rank.
nmhash::io::safetensors_file read_checkpoint(const std::string& path, const ranks& rk) {
  const std::vector<unsigned char> bytes = rk.read(path);
  return nmhash::io::parse_safetensors(bytes.data(), bytes.size(), path);
}

template <class Optimizer>
int run(const options& o, Optimizer opt, const ranks& rk) {
  const auto t0 = clock_type::now();
  const auto split = o.data.open();
  // A progressive run trains on T' and scores bits on V.
  const bool progressive = o.reduce_from > 0;
  nmhash::require(!progressive || o.reduce_from > o.bits, "--reduce-from ", o.reduce_from, " must exceed --bits ",
                  o.bits);
  nmhash::require(!progressive || o.device == "cpu", "--reduce-from: progressive runs train on the CPU only");
  const auto train = head(progressive ? split.train_nm : split.train, o.train_limit);
  const bool classify = o.loss == "classify";
  if (classify) {
    nmhash::require(!progressive, "--method classify pretrains a backbone at a fixed width: no --reduce-from");
    nmhash::require(o.device == "cpu", "--method classify trains on the CPU only");
    nmhash::require(o.bits == split.pool->num_classes(), "--method classify: --bits is ", o.bits, ", the data set has ",
                    split.pool->num_classes(), split.pool->labels().is_multi() ? " labels" : " classes",
                    " (one output per class)");
  }
  nmhash::require(!progressive || !split.validation.empty(), o.data.dataset,
                  ": a progressive run scores bits on the split's validation set V, and it is empty");
  const auto query = head(split.query, o.query_limit);
  const auto db = head(split.database, o.db_limit);
  nmhash::require(!train.empty() && !query.empty() && !db.empty(), o.data.dataset, ": ", train.size(),
                  " training images, ", query.size(), " queries, ", db.size(), " database images (none may be empty)");
  std::string arch_why;
  const nmhash::nn::architecture arch = o.data.architecture(split, arch_why);
  const nmhash::data::transform_options transform = o.data.transform(split, arch, train);
  const nmhash::data::batch_loader<real> loader(split.pool, transform);
  const nmhash::labels& all_labels = split.pool->labels();
  if (rk.root()) std::filesystem::create_directories(o.out);
  // One run per output directory at a time (rank 0 writes it).
  std::unique_ptr<nmhash::io::directory_lock> out_lock;
  if (rk.root()) out_lock = std::make_unique<nmhash::io::directory_lock>(o.out);
  const std::string ck_path = o.out + "/checkpoint.safetensors";

  nmhash::nn::sequential<real> net;
  nmhash::nn::scaled_tanh<real>* tanh_head = nullptr;
  const std::size_t b_in = progressive ? o.reduce_from : o.bits;
  nmhash::nn::build_hashing_network<real>(net, arch, b_in, o.batch, 0, [&](nmhash::nn::sequential<real>& n) {
    if (o.loss == "hashnet") tanh_head = &n.add(nmhash::nn::scaled_tanh<real>(1.0));
  });
  std::printf("architecture %s (%s): input %s, %s\n", arch.name.c_str(), arch_why.c_str(), arch.input_str().c_str(),
              arch.layers.c_str());
  std::printf("transform: %s\n", nmhash_tool::describe(transform).c_str());
  const double hashnet_alpha = o.hashnet_alpha;
  const double margin = o.margin > 0 ? o.margin : 2.0 * static_cast<double>(o.bits);
  const std::size_t batches_per_epoch = (train.size() + o.batch - 1) / o.batch;
  net.initialize(o.seed);
  if (!o.init_from.empty()) {
    const auto report = nmhash::nn::load_matching_parameters(nmhash::io::load_safetensors(o.init_from), net);
    std::printf("--init-from %s: loaded %zu tensors, skipped %zu\n", o.init_from.c_str(), report.loaded.size(),
                report.skipped.size());
    for (const auto& s : report.skipped) std::printf("  skipped %s\n", s.c_str());
    nmhash::require(!report.loaded.empty(), o.init_from, ": no tensor matches a parameter of the ", arch.name,
                    " network by name and shape");
  }

  // Every setting a resumed run must share with the checkpoint's.
  const nlohmann::json hyper = {{"optimizer", o.optimizer}, {"lr", o.lr},       {"weight_decay", o.weight_decay},
                                {"momentum", o.momentum},   {"batch", o.batch}, {"alpha", o.alpha},
                                {"eta", o.eta},             {"hashnet_alpha", o.hashnet_alpha},
                                {"margin", margin},         {"dataset", o.data.dataset},
                                {"arch", arch.layers},      {"input", arch.input_str()},
                                {"transform", {{"resize", transform.resize}, {"random_crop", transform.random_crop},
                                               {"flip", transform.flip}, {"mean", transform.mean},
                                               {"std", transform.stddev}}},
                                {"init_from", o.init_from}};
  nlohmann::json settings = hyper;
  if (progressive)
    settings["progressive"] = {{"reduce_from", o.reduce_from},   {"reduction", o.reduction},
                               {"merges", o.merges},             {"active_epochs", o.active_epochs},
                               {"frozen_epochs", o.frozen_epochs}, {"nm_lr", o.nm_lr},
                               {"frozen_weight", o.frozen_weight}, {"vote_tie", o.vote_tie},
                               {"bank_after_truncation", o.bank}};

  // The one training engine: a fixed-length run is a progressive run with
  // no stage (o.epochs epochs at K = B_in, the identity grouping).
  // A progressive run adds stages after the o.epochs warm-up epochs.
  nmhash::hashing::progressive_schedule sched;
  sched.name = progressive ? "progressive" : "fixed";
  sched.b_in = b_in;
  sched.lengths = {};
  if (progressive) {
    sched.lengths = {o.bits};
    sched.merges = o.merges;
    sched.active_epochs = o.active_epochs;
    sched.frozen_epochs = o.frozen_epochs;
    sched.nm_lr = o.nm_lr;
    sched.frozen_weight = o.frozen_weight;
    sched.tie = nmhash::hashing::parse_vote_tie(o.vote_tie);
    sched.bank_after_truncation = nmhash::hashing::parse_bank_remap(o.bank);
  }
  sched.warmup_epochs = o.epochs;
  sched.batch = o.batch;
  sched.optimizer = o.optimizer;
  sched.backbone_lr = o.lr;
  sched.weight_decay = o.weight_decay;
  sched.momentum = o.momentum;
  const auto mode = !progressive || o.reduction == "merge" ? nmhash::hashing::reduction::merge
                                                           : nmhash::hashing::reduction::select;
  const std::vector<std::size_t> val = progressive ? split.validation : std::vector<std::size_t>{};
  nmhash::hashing::progressive_trainer<real, Optimizer> tr(
      sched, mode, net, opt,
      classify ? nmhash::loss::loss_fn<real>([](const auto& u, const auto& idx, const auto& bank, auto& du) {
        return nmhash::loss::classify(u, idx, bank, du);
      })
               : nmhash::loss::loss_by_name<real>(o.loss, {o.alpha, o.eta, hashnet_alpha, margin}),
      [&](const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, nmhash::tensor<real>& x,
          const nmhash::hashing::batch_use& use) { loader.load(ids, first, n, x, use.training, o.seed, use.epoch); },
      train, all_labels.subset(train), val, all_labels.subset(val), o.seed);
  const std::size_t total_epochs = tr.plan().size();

#ifdef NMHASH_TOOL_MPI
  if (rk.comm) tr.set_data_parallel(nmhash::mpi::data_parallel<real>(*rk.comm));
#endif
  nlohmann::json history = nlohmann::json::array();
  if (o.resume && rk.exists(ck_path)) {
    const auto ck = read_checkpoint(ck_path, rk);
    for (const char* key : {"loss", "bits", "seed", "train", "settings"}) {
      const std::string expect = key == std::string("loss")   ? o.loss
                                 : key == std::string("bits") ? std::to_string(o.bits)
                                 : key == std::string("seed") ? std::to_string(o.seed)
                                 : key == std::string("train") ? std::to_string(train.size())
                                                               : settings.dump();
      const std::string& found = ck.meta(key, ck_path);
      nmhash::require(found == expect, ck_path, ": checkpoint has ", key, " = ", found, ", this run has ", expect,
                      " (use another --out or --no-resume)");
    }
    const std::uint64_t done = ck.meta_u64("epochs_done", ck_path);
    nmhash::require(done <= total_epochs, ck_path, ": checkpoint holds ", done, " epochs of training, ",
                    progressive ? "this progressive run has " : "--epochs is ", total_epochs,
                    progressive ? " in all" : "", " (continue with more epochs, or use another --out or --no-resume)");
    tr.load_state(ck, ck_path);
    try {
      history = nlohmann::json::parse(ck.meta("history", ck_path));
    } catch (const nlohmann::json::exception& e) {
      nmhash::detail::fail(ck_path, ": metadata field 'history' is not JSON: ", e.what());
    }
    nmhash::require(history.is_array() && history.size() == done, ck_path, ": metadata field 'history' holds ",
                    history.is_array() ? history.size() : 0, " epochs, epochs_done is ", done);
    std::fprintf(stderr, "resuming from %s after epoch %zu\n", ck_path.c_str(), tr.epochs_done());
  }

  std::unique_ptr<nmhash_train::cuda_trainer> dev;
  std::string device_name = "cpu";
  if (o.device == "cuda") {
    std::size_t steps = 0;
    if constexpr (std::is_same_v<Optimizer, nmhash::optim::adam<real>>) steps = opt.steps();
    const nmhash_train::cuda_settings cs{o.loss,          o.optimizer, o.alpha, o.eta, hashnet_alpha, margin, o.momentum,
                                         optimizer_groups(o)};
    nmhash_train::cuda_ranks cr;
    cr.rank = rk.rank;
    cr.ranks = rk.size;
    cr.local_rank = rk.local_rank;
    cr.share_from_root = [&rk](std::string& s) { s = rk.share(s); };
    dev = nmhash_train::make_cuda_trainer(net, tr.bank(), cs, opt.state(), steps, cr);
    device_name = "cuda (" + dev->device() + ")";
    nmhash::hashing::external_step<real> ext;
    ext.step = [&](const nmhash::tensor<real>& x, const std::vector<std::size_t>& idx) { return dev->step(x, idx); };
    ext.infer = [&](const nmhash::tensor<real>& x, nmhash::tensor<real>& y) { dev->infer(x, y); };
    ext.sync = [&](nmhash::loss::memory_bank<real>& bank) {
      std::size_t s = 0;
      dev->download(bank, opt.state(), s);
      if constexpr (std::is_same_v<Optimizer, nmhash::optim::adam<real>>) opt.set_steps(s);
    };
    tr.set_external_step(std::move(ext));
  }
  if (rk.size > 1) device_name += ", data parallel over " + std::to_string(rk.size) + " ranks";
  std::printf("%s %s, %s loss, K = %zu, %s lr %g, batch %zu, seed %llu, on %s: %zu training images\n",
              o.data.dataset.c_str(), arch.name.c_str(), o.loss.c_str(), o.bits, o.optimizer.c_str(), o.lr, o.batch,
              static_cast<unsigned long long>(o.seed), device_name.c_str(), train.size());
  if (progressive)
    std::printf("progressive (%s) from %zu bits: %zu warm-up epochs, then %zu stages of %zu active and %zu frozen "
                "epochs (m = %zu, %zu validation images score the bits), %zu epochs in all\n",
                o.reduction.c_str(), b_in, o.epochs, nmhash::hashing::stage_targets(sched).size(), o.active_epochs,
                o.frozen_epochs, o.merges, val.size(), total_epochs);

  // HashNet's continuation: beta follows the iteration count.
  if (tanh_head) tanh_head->set_beta(nmhash::nn::hashnet_beta(tr.epochs_done() * batches_per_epoch));
  tr.on_batch = [&](const nmhash::hashing::epoch_record& e, std::size_t done, std::size_t total) {
    if (tanh_head)
      tanh_head->set_beta(nmhash::nn::hashnet_beta((e.epoch - 1) * batches_per_epoch + (done + o.batch - 1) / o.batch));
    progress(e.epoch, total_epochs, done, total, e.loss, static_cast<double>(done) / e.seconds);
  };
  double train_seconds = 0;
  tr.on_epoch = [&](std::size_t epochs_done) {
    const auto& e = tr.history().back();
    train_seconds += e.seconds;
    if (isatty(fileno(stderr))) std::fprintf(stderr, "\n");
    std::printf("epoch %zu/%zu  %s K=%zu  loss %.5f  %.1f s  %.0f img/s\n", epochs_done, total_epochs,
                nmhash::hashing::to_string(e.phase), tr.nm().nodes(), e.loss, e.seconds,
                static_cast<double>(train.size()) / e.seconds);
    std::fflush(stdout);
    history.push_back({{"epoch", epochs_done}, {"loss", e.loss}, {"seconds", e.seconds}});
    if (progressive) {
      history.back()["phase"] = nmhash::hashing::to_string(e.phase);
      history.back()["nodes"] = tr.nm().nodes();
    }
    nmhash::io::tensor_map tensors;
    std::map<std::string, std::string> meta{{"loss", o.loss},
                                            {"bits", std::to_string(o.bits)},
                                            {"seed", std::to_string(o.seed)},
                                            {"train", std::to_string(train.size())},
                                            {"settings", settings.dump()},
                                            {"history", history.dump()}};
    tr.save_state(tensors, meta);
    if (rk.root()) nmhash::io::save_safetensors(ck_path, tensors, meta);
  };
  tr.run();

  const auto v0 = clock_type::now();
  const auto cq = tr.encode(query), cd = tr.encode(db);
  const nmhash::labels ql = all_labels.subset(query), dl = all_labels.subset(db);
  nmhash::evaluation_options eo;
  eo.precision_at = {100, 1000};
  // MAP@k: --map-at, or k = 5,000 on multi-label data (DeepHash-pytorch's
  // NUS-WIDE and COCO setting), capped at the database size.
  const std::size_t map_k = o.map_at >= 0 ? static_cast<std::size_t>(o.map_at) : all_labels.is_multi() ? 5000 : 0;
  if (map_k) eo.map_at.push_back(std::min(map_k, db.size()));
  nmhash::evaluation ev;
#ifdef NMHASH_TOOL_MPI
  if (rk.comm) {
    // Every rank holds every code: each evaluates against its part of the database.
    const std::size_t b = nmhash::split_begin(cd.size(), rk.size, rk.rank);
    const std::size_t e = nmhash::split_begin(cd.size(), rk.size, rk.rank + 1);
    nmhash::packed_codes part(e - b, cd.bits());
    std::copy(cd.data() + b * cd.words_per_code(), cd.data() + e * cd.words_per_code(), part.data());
    std::vector<std::size_t> rows(e - b);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = b + i;
    ev = nmhash::mpi::evaluate(*rk.comm, cq, part, ql, dl.subset(rows), eo);
  } else
#endif
    ev = nmhash::evaluate(cq, cd, ql, dl, eo);
  if (!rk.root()) return 0;  // rank 0 writes
  // A classifier's top-1 accuracy on the queries (single-label data).
  double accuracy = -1;
  if (classify && !all_labels.is_multi()) {
    std::size_t right = 0;
    nmhash::tensor<real> x;
    for (std::size_t b = 0; b < query.size(); b += o.batch) {
      const std::size_t n = std::min(o.batch, query.size() - b);
      loader.load(query, b, n, x, false, o.seed, 0);
      const auto& y = net.forward(x, false);
      for (std::size_t i = 0; i < n; ++i) {
        const real* row = y.data() + i * o.bits;
        const auto top = static_cast<std::int32_t>(std::max_element(row, row + o.bits) - row);
        right += top == all_labels.ids()[query[b + i]];
      }
    }
    accuracy = static_cast<double>(right) / static_cast<double>(query.size());
    std::printf("classifier top-1 accuracy on the queries %.4f (the codes below are the signs of the logits)\n",
                accuracy);
  }
  const double eval_seconds = std::chrono::duration<double>(clock_type::now() - v0).count();
  const auto spread = nmhash::code_spread(cd);
  const bool collapsed = spread.collapsed();
  std::printf("MAP tie-aware %.4f  index-order %.4f  precision r<=2 %.4f  distinct database codes %zu (largest group %.1f%%)\n",
              ev.map.tie_aware, ev.map.index_order, ev.within_radius.precision, spread.distinct,
              100 * spread.largest_share);
  for (std::size_t a = 0; a < ev.map_at_k.size(); ++a)
    std::printf("MAP@%zu tie-aware %.4f  index-order %.4f\n", ev.map_at_k[a], ev.map_at[a].tie_aware,
                ev.map_at[a].index_order);
  if (collapsed)
    std::printf("WARNING: the codes have collapsed (%zu distinct database codes, %.1f%% share one code): "
                "lower the learning rate or change the optimizer\n",
                spread.distinct, 100 * spread.largest_share);

  // The model, its codes, labels and summary are one set: a reader never
  // finds a summary beside weights it does not describe.
  nmhash::io::atomic_group outputs;
  nmhash::hashing::model_description md;
  md.arch = arch;
  md.b_in = b_in;
  md.transform = transform;
  md.tie = sched.tie;
  nmhash::hashing::write_model(outputs.add(o.out + "/model.safetensors"), net, tr.nm().partition(), md, {{"dataset", o.data.dataset}, {"loss", o.loss}, {"seed", std::to_string(o.seed)}});
  nmhash::io::write_codes_npy(outputs.add(o.out + "/query_codes.npy"), cq);
  nmhash::io::write_codes_npy(outputs.add(o.out + "/db_codes.npy"), cd);
  write_labels_npy(outputs.add(o.out + "/query_labels.npy"), ql);
  write_labels_npy(outputs.add(o.out + "/db_labels.npy"), dl);
  nlohmann::json map_at = nlohmann::json::array();
  for (std::size_t a = 0; a < ev.map_at_k.size(); ++a)
    map_at.push_back({{"k", ev.map_at_k[a]}, {"tie_aware", ev.map_at[a].tie_aware},
                      {"index_order", ev.map_at[a].index_order}});
  nlohmann::json summary = {
      {"protocol", o.data.dataset}, {"dataset", o.data.dataset}, {"model", arch.name}, {"arch", arch.layers},
      {"input", arch.input_str()}, {"labels", all_labels.is_multi() ? "multi" : "single"},
      {"classes", split.pool->num_classes()}, {"loss", o.loss}, {"bits", o.bits}, {"settings", settings},
      {"b_in", b_in}, {"grouping", tr.nm().partition().str()},
      {"map", {{"tie_aware", ev.map.tie_aware}, {"index_order", ev.map.index_order}}}, {"map_at", map_at},
      {"device", device_name},
      {"optimizer", o.optimizer}, {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"batch", o.batch},
      {"epochs", total_epochs}, {"seed", o.seed}, {"train_images", train.size()}, {"queries", query.size()},
      {"database", db.size()}, {"map_tie_aware", ev.map.tie_aware}, {"map_index_order", ev.map.index_order},
      {"precision_within_radius_2", ev.within_radius.precision}, {"distinct_database_codes", spread.distinct},
      {"largest_code_share", spread.largest_share}, {"collapsed", collapsed}, {"train_seconds_this_run", train_seconds},
      {"eval_seconds", eval_seconds},
      {"wall_seconds", std::chrono::duration<double>(clock_type::now() - t0).count()}, {"history", history}};
  if (accuracy >= 0) summary["query_accuracy"] = accuracy;
  const std::string text = summary.dump(2) + "\n";
  outputs.add(o.out + "/summary.json").write(text.data(), text.size());
  outputs.commit();
  std::printf("wrote %s/{summary.json, model.safetensors, query_codes.npy, db_codes.npy, *_labels.npy}\n",
              o.out.c_str());
  return 0;
}

}  // namespace

#ifndef NMHASH_TRAIN_CUDA
std::unique_ptr<nmhash_train::cuda_trainer> nmhash_train::make_cuda_trainer(nmhash::nn::sequential<float>&,
                                                                           const nmhash::loss::memory_bank<float>&,
                                                                           const cuda_settings&,
                                                                           const optimizer_state&, std::size_t,
                                                                           const cuda_ranks&) {
  nmhash::detail::fail("--device cuda: this nmhash_train was built without CUDA (CMake found no nvcc, cuBLAS or "
                       "cuDNN); rebuild on a machine with the CUDA toolkit and cuDNN");
}
#endif

namespace {

int run_tool(int argc, char** argv, const nmhash_tool::mpi_session& session) {
  CLI::App app{"nmhash_train: fixed-length deep hashing on a data set (fmnist-dpsh, cifar10:DIR, list:DIR)"};
  options o;
  auto methods = nmhash::loss::loss_names();
  methods.push_back("classify");
  app.add_option("--method,--loss", o.loss,
                 "hashing method (its pairwise loss): dpsh, eq7, dhn, hashnet, dsh; or classify, cross-entropy on "
                 "--bits = the number of classes, to pretrain a backbone for --init-from")
      ->check(CLI::IsMember(methods));
  app.add_option("--bits", o.bits, "code length K")->check(CLI::Range(1, 4096));
  app.add_option("--epochs", o.epochs, "training epochs, 1 or more (with --reduce-from: the warm-up epochs at B_in)")->check(nmhash_tool::integer_range(1, 1000000));
  app.add_option("--batch", o.batch, "batch size, 1 to 65536")->check(nmhash_tool::integer_range(1, 65536));
  app.add_option("--device", o.device, "where to train: cpu, or cuda (the first CUDA device; under mpirun one per rank, over NCCL)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--optimizer", o.optimizer, "optimizer")->check(CLI::IsMember({"adam", "sgd", "rmsprop"}));
  app.add_option("--lr", o.lr, "learning rate (positive)")->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", o.weight_decay, "L2 weight decay (0 or more)")->check(CLI::NonNegativeNumber);
  app.add_option("--momentum", o.momentum, "SGD momentum, 0 to 1")->check(CLI::Range(0.0, 1.0));
  app.add_option("--alpha", o.alpha, "quantization weight of dpsh, dhn and dsh (0 or more)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--hashnet-alpha", o.hashnet_alpha, "HashNet's sigmoid scale (theta = alpha h . H)")
      ->check(CLI::PositiveNumber);
  app.add_option("--margin", o.margin, "DSH margin (0 or absent: 2 K)")->check(CLI::NonNegativeNumber);
  app.add_option("--eta", o.eta, "Eq. (7) quantization weight (0 or more)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of initialisation and shuffling");
  auto* prog = app.add_option_group("progressive", "train from more bits down to --bits (the NMLayer or Select)");
  prog->add_option("--reduce-from", o.reduce_from,
                   "B_in: train --epochs warm-up epochs at this many bits on T', then reduce to --bits in stages "
                   "(0 or absent: a fixed-length run)")
      ->check(nmhash_tool::integer_range(0, 4096));
  prog->add_option("--reduction", o.reduction,
                   "how a stage reduces the code: merge (the NMLayer: learned merges, majority vote) or select "
                   "(drop the least important bits)")
      ->check(CLI::IsMember({"merge", "select"}));
  prog->add_option("--merges", o.merges, "m, nodes removed per stage")->check(nmhash_tool::integer_range(1, 4096));
  prog->add_option("--active-epochs", o.active_epochs, "N0, scoring epochs per stage")
      ->check(nmhash_tool::integer_range(1, 1000000));
  prog->add_option("--frozen-epochs", o.frozen_epochs, "N1, epochs after each truncation")
      ->check(nmhash_tool::integer_range(0, 1000000));
  prog->add_option("--nm-lr", o.nm_lr, "learning rate of the NMLayer's adjacency A")->check(CLI::PositiveNumber);
  prog->add_option("--frozen-weight", o.frozen_weight, "weight of the frozen-phase loss")
      ->check(CLI::NonNegativeNumber);
  prog->add_option("--vote-tie", o.vote_tie, "tie rule of an even node's vote: first_child or summed_output")
      ->check(CLI::IsMember({"first_child", "summed_output"}));
  prog->add_option("--bank-after-truncation", o.bank,
                   "memory bank after a stage's truncation: recompute (re-encode every training image) or "
                   "mean_columns (the mean of the merged nodes' columns)")
      ->check(CLI::IsMember({"recompute", "mean_columns"}));
  o.data.add_options(app);
  app.add_option("--init-from", o.init_from,
                 "start from the tensors of this safetensors file whose nn.Sequential name and shape match "
                 "(a pretrained backbone); the rest keep their initialisation and are listed");
  app.add_option("--map-at", o.map_at, "also report MAP@k for this k (0: none; default 5000 on multi-label data)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--out", o.out, "output directory (default results/train-LOSS-KBITS)");
  app.add_option("--train-limit", o.train_limit, "use only the first N training images (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--query-limit", o.query_limit, "use only the first N queries (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--db-limit", o.db_limit, "use only the first N database images (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  bool no_resume = false;
  app.add_flag("--no-resume", no_resume, "ignore an existing checkpoint");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  o.resume = !no_resume;
  if (o.out.empty()) o.out = "results/train-" + o.loss + "-" + std::to_string(o.bits);
  ranks rk;
  try {
    rk = nmhash_tool::ranks_of(session);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_train: error: %s\n", e.what());
    return 1;
  }
  try {
    const nmhash::optim::group_table groups = optimizer_groups(o);
    if (o.optimizer == "adam") return run(o, nmhash::optim::adam<real>(groups), rk);
    if (o.optimizer == "rmsprop") return run(o, nmhash::optim::rmsprop<real>(groups), rk);
    return run(o, nmhash::optim::sgd<real>(o.momentum, groups), rk);
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
