// nmhash_reproduce: the NMLayer paper's experiments on fmnist-dpsh (or any
// data set of nmhash_train's --dataset, with any --arch backbone).
//
// Runs (each in OUT/runs/<id>/, skipped when its result.json exists, and
// resumed from its checkpoint after every epoch otherwise):
//   nmlayer          progressive NMLayer from B_in bits, evaluated at every
//                    stage (MAP against code length, Fig. 4b) and fully at
//                    the reported lengths (Table 1, Fig. 5)
//   baseline-K       fixed-length lenet at K bits, as many epochs as the
//                    progressive run spent to reach K (Table 1, Fig. 4)
//   random, select   the ablations without active / frozen phase (Fig. 5)
//   dropout-K        dropout (0.5) before the hashing layer (Fig. 5)
//   fclayer-K        a fully connected B_in -> K layer instead of NMLayer
//   ours_star-K      the paper's Ours*: an NMLayer run from B_in = K bits,
//                    reduced to round(0.8 K) (the ratio of 60 -> 48), with the
//                    epochs of baseline-K; reported in the K-bit column
// Writes OUT/results.json, OUT/table.csv and the curve CSVs that
// scripts/plot_reproduction.py turns into PNG plots.
// Under mpirun (built with MPI) every run is data parallel
// (progressive_trainer's data_parallel): each rank trains on its share of
// every batch, rank 0 prints and writes, and checkpoints resume on any
// number of ranks.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "data_options.hpp"
#include "tool_common.hpp"
#include "nmhash/data/batches.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#ifdef NMHASH_TOOL_MPI
#include "nmhash/mpi/training.hpp"
#endif
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/loss/registry.hpp"
#include "nmhash/nmhash.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/optim/adam.hpp"
#include "nmhash/optim/rmsprop.hpp"
#include "nmhash/optim/sgd.hpp"

namespace {

namespace h = nmhash::hashing;
using json = nlohmann::json;
using real = float;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string preset = "quick", out = "results/reproduce";
  nmhash_tool::data_options data;
  std::vector<std::string> variants{"nmlayer", "baseline", "random", "select", "dropout", "fclayer"};
  std::vector<std::size_t> ablation_lengths;  // default: 32 (quick) or every length (paper)
  std::size_t loo_bits = 32, baseline_epochs = 0;
  std::size_t train_limit = 0, query_limit = 0, db_limit = 0;  // smoke tests: evenly spaced subsets
  std::string gradient, truncation, method = "eq7", vote_tie, bank, init_from;
  bool reset_optimizer = false;
  long validation_refresh = -1;
  double alpha = 0.1;  // quantization weight of dpsh, dhn and dsh
  // Overrides of the preset (negative: keep the preset's value).
  long merges = -1, warmup = -1, n0 = -1, n1 = -1;
  double lr = -1, nm_lr = -1, eta = -1, frozen_weight = -1;
  std::uint64_t seed = 1;  // the first seed; --seeds N runs seed, seed + 1, ..., seed + N - 1
  std::size_t seeds = 1;
  bool resume = true;
  bool reported_only = false;  // evaluate the nmlayer run at the reported lengths only
};

struct run_spec {
  std::string id, variant;
  h::progressive_schedule sched;
  h::reduction mode = h::reduction::merge;
  std::size_t bits = 0;        // final code length
  bool dropout = false;        // dropout before the hashing layer
  std::size_t fc_from = 0;     // > 0: hashing layer of fc_from bits, then FC fc_from -> bits
  bool timed = false;          // epochs set from the nmlayer run's training time (equal_time_epochs)
  std::set<std::size_t> full_eval;  // lengths evaluated with every metric
  bool eval_every_stage = false;
};

void write_text(const std::string& path, const std::string& text) {
  nmhash::io::atomic_file f(path);
  f.write(text.data(), text.size());
  f.commit();
}

// The machine, build and threads a run trained on.
json machine_json() {
  const auto m = nmhash_tool::machine();
  return {{"cpu", m.cpu}, {"features", m.features}, {"compiler", m.compiler}, {"flags", m.flags}, {"threads", m.threads}};
}

json schedule_json(const h::progressive_schedule& s) {
  return {{"name", s.name},
          {"b_in", s.b_in},
          {"lengths", s.lengths},
          {"m", s.merges},
          {"warmup_epochs", s.warmup_epochs},
          {"n0", s.active_epochs},
          {"n1", s.frozen_epochs},
          {"batch", s.batch},
          {"optimizer", s.optimizer},
          {"backbone_lr", s.backbone_lr},
          {"weight_decay", s.weight_decay},
          {"nm_lr", s.nm_lr},
          {"eta", s.eta},
          {"frozen_weight", s.frozen_weight},
          {"gradient", to_string(s.gradient)},
          {"truncation", to_string(s.truncation)},
          {"validation_refresh", s.validation_refresh},
          {"vote_tie", to_string(s.tie)},
          {"bank_after_truncation", to_string(s.bank_after_truncation)},
          {"reset_optimizer", s.reset_optimizer}};
}

// The backbone (lenet on fmnist-dpsh: protocol.md) with the variants'
// changes at its head, and HashNet's scaled tanh after the hashing layer;
// returns that layer (or null).
nmhash::nn::scaled_tanh<real>* build_net(nmhash::nn::sequential<real>& net, const run_spec& r, const std::string& method,
                                         const nmhash::nn::architecture& arch) {
  using namespace nmhash::nn;
  const std::size_t features = add_backbone(net, arch);
  if (r.dropout) net.add(dropout<real>(0.5, r.sched.name.size() + 17));
  if (r.fc_from) {
    net.add(linear<real>(features, r.fc_from, init_scheme::xavier_normal));
    net.add(linear<real>(r.fc_from, r.bits, init_scheme::xavier_normal));
  } else {
    net.add(linear<real>(features, r.sched.b_in, init_scheme::xavier_normal));
  }
  scaled_tanh<real>* tanh_head = method == "hashnet" ? &net.add(scaled_tanh<real>(1.0)) : nullptr;
  net.build(nmhash::shape4{r.sched.batch, arch.channels, arch.height, arch.width});
  return tanh_head;
}

// Every ceil(n / limit)-th entry (all when limit is 0): a subset that keeps
// the class balance of class-ordered splits.
std::vector<std::size_t> subsample(const std::vector<std::size_t>& v, std::size_t limit) {
  if (!limit || limit >= v.size()) return v;
  const std::size_t step = (v.size() + limit - 1) / limit;
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < v.size(); i += step) out.push_back(v[i]);
  return out;
}

struct context {
  const options& o;
  nmhash::data::retrieval_split split;
  nmhash::nn::architecture arch;
  nmhash::data::transform_options transform;
  std::unique_ptr<nmhash::data::batch_loader<real>> loader;
  nmhash::labels query_labels, db_labels;
  std::size_t map_at = 0;  // MAP@k on multi-label data
  nmhash_tool::tool_ranks rk{};  // under mpirun: data-parallel training, rank 0 writes
};

// The data set, network and input transform a checkpoint belongs to.
json data_json(const context& cx) {
  json d = {{"dataset", cx.o.data.dataset}, {"arch", cx.arch.layers}, {"input", cx.arch.input_str()},
            {"transform", nmhash_tool::describe(cx.transform)}};
  if (!cx.o.init_from.empty()) d["init_from"] = cx.o.init_from;
  return d;
}

// --init-from: the backbone's tensors of the file (layers before the hashing
// layer, by nn.Sequential index) whose name and shape match; every run
// starts from the same backbone, and its hashing layer keeps its seeded
// initialisation.
void load_backbone(nmhash::nn::sequential<real>& net, const context& cx) {
  nmhash::nn::sequential<real> probe;
  const std::size_t layers = (nmhash::nn::add_backbone(probe, cx.arch), probe.size());
  auto f = nmhash::io::load_safetensors(cx.o.init_from);
  for (auto it = f.tensors.begin(); it != f.tensors.end();) {
    const auto dot = it->first.find('.');
    std::size_t index = layers;
    try {
      if (dot != std::string::npos) index = std::stoul(it->first.substr(0, dot));
    } catch (const std::exception&) {
    }
    it = index < layers ? std::next(it) : f.tensors.erase(it);
  }
  const auto report = nmhash::nn::load_matching_parameters(f, net);
  nmhash::require(!report.loaded.empty(), cx.o.init_from, ": no tensor matches a backbone parameter of the ",
                  cx.arch.name, " network by name and shape");
  std::printf("--init-from %s: %zu backbone tensors loaded\n", cx.o.init_from.c_str(), report.loaded.size());
}

template <class Optimizer>
json run_one(context& cx, const run_spec& r, Optimizer opt) {
  const std::string dir = cx.o.out + "/runs/" + r.id;
  if (cx.rk.root()) std::filesystem::create_directories(dir);
  const std::string ck_path = dir + "/checkpoint.safetensors";
  // Fixed-length runs train on all of T; NMLayer-style runs on T' (V scores).
  const bool progressive = !r.sched.lengths.empty();
  const auto& train = progressive ? cx.split.train_nm : cx.split.train;
  nmhash::nn::sequential<real> net;
  const std::string method = cx.o.method;
  auto* tanh_head = build_net(net, r, method, cx.arch);
  net.initialize(cx.o.seed);
  if (!cx.o.init_from.empty()) load_backbone(net, cx);
  const double eta = r.sched.eta, alpha = cx.o.alpha;
  h::progressive_trainer<real, Optimizer> tr(
      r.sched, r.mode, net, opt,
      nmhash::loss::loss_by_name<real>(method, {alpha, eta, nmhash::loss::hashnet_defaults::alpha, 0}),
      [&](const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, nmhash::tensor<real>& x,
          const h::batch_use& use) { cx.loader->load(ids, first, n, x, use.training, cx.o.seed, use.epoch); },
      train, cx.split.pool->labels().subset(train), cx.split.validation,
      cx.split.pool->labels().subset(cx.split.validation), cx.o.seed);

#ifdef NMHASH_TOOL_MPI
  if (cx.rk.comm) tr.set_data_parallel(nmhash::mpi::data_parallel<real>(*cx.rk.comm));
#endif
  json reports = json::array(), history = json::array();
  double train_seconds = 0;
  if (cx.o.resume && cx.rk.exists(ck_path)) {
    const std::vector<unsigned char> ck_bytes = cx.rk.read(ck_path);
    const auto ck = nmhash::io::parse_safetensors(ck_bytes.data(), ck_bytes.size(), ck_path);
    nmhash::require(ck.meta("run", ck_path) == r.id && ck.meta("seed", ck_path) == std::to_string(cx.o.seed) &&
                        ck.meta("schedule_json", ck_path) == schedule_json(r.sched).dump() &&
                        ck.meta("data", ck_path) == data_json(cx).dump(),
                    ck_path, ": checkpoint of another run, seed, preset, data set or architecture (use another --out or "
                    "--no-resume)");
    tr.load_state(ck, ck_path);
    const auto json_field = [&](const char* key) {
      try {
        return json::parse(ck.meta(key, ck_path));
      } catch (const json::exception& e) {
        nmhash::detail::fail(ck_path, ": metadata field '", key, "' is not JSON: ", e.what());
      }
    };
    reports = json_field("reports");
    history = json_field("history");
    const json seconds = json_field("train_seconds");
    nmhash::require(seconds.is_number(), ck_path, ": metadata field 'train_seconds' is not a number");
    train_seconds = seconds.get<double>();
    std::printf("[%s] resuming after epoch %zu of %zu\n", r.id.c_str(), tr.epochs_done(), tr.plan().size());
  }

  // HashNet's continuation: beta follows the iteration count over the whole
  // run (every epoch has the same number of batches).
  const std::size_t batches_per_epoch = (train.size() + r.sched.batch - 1) / r.sched.batch;
  if (tanh_head) tanh_head->set_beta(nmhash::nn::hashnet_beta(tr.epochs_done() * batches_per_epoch));
  const bool tty = isatty(fileno(stderr));
  tr.on_batch = [&](const h::epoch_record& e, std::size_t done, std::size_t total) {
    if (tanh_head)
      tanh_head->set_beta(nmhash::nn::hashnet_beta((e.epoch - 1) * batches_per_epoch +
                                                   (done + r.sched.batch - 1) / r.sched.batch));
    if (!tty) return;
    const int width = 24, filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r[%s] epoch %zu/%zu %-6s K=%-2zu [%.*s%*s] loss %.2f %5.0f img/s", r.id.c_str(), e.epoch,
                 tr.plan().size(), to_string(e.phase), e.nodes, filled, "########################", width - filled,
                 "", e.loss, static_cast<double>(done) / e.seconds);
    std::fflush(stderr);
  };

  // pending: seconds of the epoch just trained that on_epoch has not added
  // to train_seconds yet.
  auto evaluate = [&](std::size_t epochs_done, double pending) {
    const std::size_t k = tr.nm().nodes();
    const bool full = r.full_eval.count(k) > 0;
    if (!full && !r.eval_every_stage) return;
    const auto t0 = clock_type::now();
    const auto cq = tr.encode(cx.split.query), cd = tr.encode(cx.split.database);
    const double encode_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    nmhash::evaluation_options eo;
    eo.precision_at = {1, 10, 50, 100, 200, 500, 1000, 2000, 5000};
    const auto& ql = cx.query_labels;
    const auto& dl = cx.db_labels;
    if (cx.map_at) eo.map_at.push_back(cx.map_at);
    const auto ev = nmhash::evaluate(cq, cd, ql, dl, eo);
    const auto spread = nmhash::code_spread(cd);
    json rep = {{"bits", k},
                {"epochs", epochs_done},
                {"train_seconds", train_seconds + pending},
                {"map_tie_aware", ev.map.tie_aware},
                {"map_index_order", ev.map.index_order},
                {"precision_r2", ev.within_radius.precision},
                {"recall_r2", ev.within_radius.recall},
                {"distinct_database_codes", spread.distinct},
                {"largest_code_share", spread.largest_share},
                {"grouping", tr.nm().partition().str()}};
    if (cx.map_at)
      rep["map_at"] = {{"k", cx.map_at}, {"tie_aware", ev.map_at[0].tie_aware}, {"index_order", ev.map_at[0].index_order}};
    if (full) {
      json pr = json::array(), pn = json::array();
      for (const auto& p : ev.pr_curve) pr.push_back({p.precision, p.recall});
      for (std::size_t i = 0; i < ev.precision_at_n.size(); ++i)
        pn.push_back({ev.precision_at_n[i], ev.precision_at[i].tie_aware});
      rep["pr_curve"] = pr;
      rep["precision_at_n"] = pn;
      if (k == cx.o.loo_bits && (r.variant == "nmlayer" || r.variant == "baseline")) {
        const auto loo = nmhash::leave_one_bit_out_map(cq, cd, ql, dl);
        double mean = 0, var = 0;
        for (double v : loo.without_bit) mean += v;
        mean /= static_cast<double>(k);
        for (double v : loo.without_bit) var += (v - mean) * (v - mean);
        var /= static_cast<double>(k);
        rep["loo"] = {{"full", loo.full}, {"without_bit", loo.without_bit}, {"mean", mean}, {"variance", var}};
      }
      if (!r.fc_from && cx.rk.root()) {  // the fclayer variant's extra layer is not an architecture spec
        h::model_description md;
        md.arch = cx.arch;
        md.b_in = r.sched.b_in;
        md.transform = cx.transform;
        md.tie = r.sched.tie;
        nmhash::io::atomic_file f(dir + "/model-" + std::to_string(k) + ".safetensors");
        h::write_model(f, net, tr.nm().partition(), md,
                       {{"dataset", cx.o.data.dataset}, {"run", r.id}, {"epochs", std::to_string(epochs_done)}});
        f.commit();
      }
    }
    rep["eval_seconds"] = std::chrono::duration<double>(clock_type::now() - t0).count();
    rep["encode_seconds"] = encode_s;
    for (auto it = reports.begin(); it != reports.end(); ++it)
      if ((*it)["bits"] == k) {
        reports.erase(it);
        break;
      }
    reports.push_back(rep);
    if (tty) std::fprintf(stderr, "\n");
    std::printf("[%s] %zu bits after %zu epochs: MAP tie-aware %.4f index-order %.4f, precision r<=2 %.4f (eval %.0f s)\n",
                r.id.c_str(), k, epochs_done, ev.map.tie_aware, ev.map.index_order, ev.within_radius.precision,
                rep["eval_seconds"].get<double>());
    if (spread.collapsed())
      std::printf("[%s] WARNING: the %zu-bit codes have collapsed (%zu distinct database codes, %.1f%% share one code)\n",
                  r.id.c_str(), k, spread.distinct, 100 * spread.largest_share);
    std::fflush(stdout);
  };
  tr.on_report = [&](const h::planned_epoch&, std::size_t done) { evaluate(done, tr.history().back().seconds); };
  tr.on_epoch = [&](std::size_t) {
    const auto& e = tr.history().back();
    train_seconds += e.seconds;
    history.push_back({{"epoch", e.epoch},
                       {"phase", to_string(e.phase)},
                       {"stage", e.stage},
                       {"nodes", e.nodes},
                       {"loss", e.loss},
                       {"frozen_loss", e.frozen_loss},
                       {"active_loss", e.active_loss},
                       {"batch_map", e.batch_map},
                       {"seconds", e.seconds},
                       {"scoring_seconds", e.scoring_seconds}});
    if (tty) std::fprintf(stderr, "\n");
    std::printf("[%s] epoch %zu/%zu %s K=%zu loss %.3f%s %.1f s (scoring %.1f%%)\n", r.id.c_str(), e.epoch,
                tr.plan().size(), to_string(e.phase), e.nodes, e.loss,
                e.phase == h::epoch_phase::active && r.mode == h::reduction::merge
                    ? (" active loss " + std::to_string(e.active_loss)).c_str()
                    : "",
                e.seconds, 100 * e.scoring_seconds / e.seconds);
    std::fflush(stdout);
    nmhash::io::tensor_map tensors;
    std::map<std::string, std::string> meta{{"run", r.id},
                                            {"schedule_json", schedule_json(r.sched).dump()},
                                            {"data", data_json(cx).dump()},
                                            {"seed", std::to_string(cx.o.seed)},
                                            {"reports", reports.dump()},
                                            {"history", history.dump()},
                                            {"train_seconds", std::to_string(train_seconds)}};
    tr.save_state(tensors, meta);
    if (cx.rk.root()) nmhash::io::save_safetensors(ck_path, tensors, meta);
  };
  tr.run();
  if (reports.empty() || reports.back()["bits"] != tr.nm().nodes()) evaluate(tr.epochs_done(), 0.0);

  double active_s = 0, scoring_s = 0;
  for (const auto& e : history)
    if (e["phase"] == "active") {
      active_s += e["seconds"].get<double>();
      scoring_s += e["scoring_seconds"].get<double>();
    }
  json result = {{"id", r.id},
                 {"variant", r.variant},
                 {"reduction", to_string(r.mode)},
                 {"schedule", r.sched.name},
                 {"b_in", r.sched.b_in},
                 {"bits", r.bits},
                 {"seed", cx.o.seed},
                 {"schedule_json", schedule_json(r.sched)},
                 {"data", data_json(cx)},
                 {"machine", machine_json()},
                 {"train_images", train.size()},
                 {"epochs", tr.plan().size()},
                 {"train_seconds", train_seconds},
                 {"active_seconds", active_s},
                 {"scoring_seconds", scoring_s},
                 {"scoring_share_of_active_epochs", active_s > 0 ? scoring_s / active_s : 0.0},
                 {"reports", reports},
                 {"history", history}};
  if (cx.rk.root()) write_text(dir + "/result.json", result.dump(2) + "\n");
  // Rank 0's result (its timings) on every rank: later runs depend on it.
  return cx.rk.size > 1 ? json::parse(cx.rk.share(result.dump())) : result;
}

json run_spec_dispatch(context& cx, const run_spec& r) {
  const std::string result_path = cx.o.out + "/runs/" + r.id + "/result.json";
  if (cx.o.resume && cx.rk.exists(result_path)) {
    json res;
    const std::vector<unsigned char> bytes = cx.rk.read(result_path);
    try {
      res = json::parse(bytes.begin(), bytes.end());
    } catch (const json::exception& e) {
      nmhash::detail::fail(result_path, ": not valid JSON (", e.what(), ")");
    }
    const bool same = res.value("seed", json()) == cx.o.seed &&
                      (!res.contains("schedule_json") || res["schedule_json"] == schedule_json(r.sched)) &&
                      (!res.contains("data") || res["data"] == data_json(cx));
    nmhash::require(same, result_path, ": result of another seed, preset, data set or architecture (use another --out "
                    "or --no-resume)");
    std::printf("[%s] done before: %s\n", r.id.c_str(), result_path.c_str());
    return res;
  }
  const nmhash::optim::group_table groups{{}, {r.sched.backbone_lr, r.sched.weight_decay}};
  if (r.sched.optimizer == "adam") return run_one(cx, r, nmhash::optim::adam<real>(groups));
  if (r.sched.optimizer == "rmsprop") return run_one(cx, r, nmhash::optim::rmsprop<real>(groups));
  nmhash::require(r.sched.optimizer == "sgd", "schedule '", r.sched.name, "': optimizer '", r.sched.optimizer,
                  "' is not one of sgd, adam, rmsprop");
  return run_one(cx, r, nmhash::optim::sgd<real>(r.sched.momentum, groups));
}

// The code length an ours_star run reduces B_in = K bits to: round(0.8 K),
// the paper's first reduction (60 -> 48) scaled to K, at least one bit less.
std::size_t ours_star_length(std::size_t k) {
  nmhash::require(k >= 2, "--variants ours_star: a ", k, "-bit code cannot be reduced");
  return std::min<std::size_t>(k - 1, static_cast<std::size_t>(std::lround(0.8 * static_cast<double>(k))));
}

// The Table 1 column of a report: its code length, except for ours_star,
// whose reduced code is compared with the methods at its B_in (the paper's
// Table 1 puts Ours* in the column of its B_in).
std::size_t table_bits(const json& res, const json& rep) {
  return res["variant"] == "ours_star" ? res["b_in"].get<std::size_t>() : rep["bits"].get<std::size_t>();
}

// Epochs of a fixed-length run of `bits` bits that cost the training time
// the nmlayer run spent to reach that length: its seconds there over the
// seconds of one of its warm-up epochs (plain training at B_in, no scoring),
// scaled from T' to T. A function of the finished nmlayer result, so a
// resumed run gets the same count.
std::size_t equal_time_epochs(const std::vector<json>& results, std::size_t bits, std::size_t train, std::size_t train_nm) {
  for (const auto& res : results) {
    if (res["variant"] != "nmlayer") continue;
    double warm = 0;
    std::size_t n = 0;
    for (const auto& e : res["history"])
      if (e["phase"] == "warmup") {
        warm += e["seconds"].get<double>();
        ++n;
      }
    nmhash::require(n > 0, "--variants timed: the nmlayer run has no warm-up epoch to time an epoch by");
    const double per_epoch = warm / static_cast<double>(n) * static_cast<double>(train) / static_cast<double>(train_nm);
    for (const auto& rep : res["reports"])
      if (rep["bits"] == bits)
        return std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(rep["train_seconds"].get<double>() / per_epoch)));
  }
  nmhash::detail::fail("--variants timed: no nmlayer report at ", bits, " bits");
}

std::vector<run_spec> make_runs(const options& o, const h::progressive_schedule& base) {
  std::vector<run_spec> runs;
  const auto& lengths = base.lengths;
  const std::set<std::size_t> all(lengths.begin(), lengths.end());
  std::vector<std::size_t> abl = o.ablation_lengths;
  if (abl.empty()) abl = base.name.rfind("paper", 0) == 0 ? lengths : std::vector<std::size_t>{32};
  for (std::size_t k : abl)
    nmhash::require(all.count(k), "--ablation-lengths: ", k, " is not a reported length of the schedule");
  const std::size_t abl_min = *std::min_element(abl.begin(), abl.end());
  auto want = [&](const std::string& v) { return std::find(o.variants.begin(), o.variants.end(), v) != o.variants.end(); };
  auto fixed = [&](const std::string& variant, std::size_t k) {
    run_spec r;
    r.variant = variant;
    r.id = variant + "-" + std::to_string(k);
    r.sched = base;
    r.sched.name = base.name;
    r.sched.b_in = k;
    r.sched.lengths.clear();
    r.sched.warmup_epochs = o.baseline_epochs ? o.baseline_epochs : h::epochs_to_reach(base, k);
    r.bits = k;
    r.full_eval = {k};
    return r;
  };
  if (want("nmlayer")) {
    run_spec r;
    r.id = r.variant = "nmlayer";
    r.sched = base;
    r.bits = lengths.back();
    r.full_eval = all;
    r.eval_every_stage = !o.reported_only;
    runs.push_back(r);
  }
  if (want("baseline"))
    for (std::size_t k : lengths) runs.push_back(fixed("baseline", k));
  if (want("timed")) {
    nmhash::require(want("nmlayer"), "--variants timed: the equal-time baselines need the nmlayer run");
    for (std::size_t k : lengths) {
      auto r = fixed("timed", k);
      r.timed = true;
      runs.push_back(r);
    }
  }
  for (const char* v : {"random", "select"})
    if (want(v)) {
      run_spec r;
      r.id = r.variant = v;
      r.mode = std::string(v) == "random" ? h::reduction::random : h::reduction::select;
      r.sched = base;
      r.sched.lengths.clear();
      for (std::size_t k : lengths)
        if (k >= abl_min) r.sched.lengths.push_back(k);
      r.bits = abl_min;
      r.full_eval = {abl.begin(), abl.end()};
      runs.push_back(r);
    }
  if (want("ours_star"))
    for (std::size_t k : abl) {
      run_spec r;
      r.variant = "ours_star";
      r.id = "ours_star-" + std::to_string(k);
      r.sched = base;
      r.sched.b_in = k;
      r.sched.lengths = {ours_star_length(k)};
      // The epochs of baseline-K: the stages down to round(0.8 K), the rest
      // as warm-up at B_in = K.
      const std::size_t budget = o.baseline_epochs ? o.baseline_epochs : h::epochs_to_reach(base, k);
      const std::size_t staged = h::stage_targets(r.sched).size() * (base.active_epochs + base.frozen_epochs);
      r.sched.warmup_epochs = budget > staged ? budget - staged : 0;
      r.bits = r.sched.lengths.back();
      r.full_eval = {r.bits};
      runs.push_back(r);
    }
  if (want("dropout"))
    for (std::size_t k : abl) {
      auto r = fixed("dropout", k);
      r.dropout = true;
      runs.push_back(r);
    }
  if (want("fclayer"))
    for (std::size_t k : abl) {
      auto r = fixed("fclayer", k);
      r.fc_from = base.b_in;
      runs.push_back(r);
    }
  return runs;
}

std::string protocol_name(const options& o) {
  const bool subset = o.train_limit || o.query_limit || o.db_limit;
  return subset ? o.data.dataset + " subset (smoke test)" : o.data.dataset;
}

// One seed's Table 1 and curve CSVs.
void write_summary(const options& o, const h::progressive_schedule& s, const std::vector<json>& results,
                   double wall) {
  std::ostringstream table, curve, loo, pr, pn, r2;
  table << "method,bits,map_tie_aware,map_index_order,precision_r2,epochs,train_seconds\n";
  curve << "method,bits,epochs,map_tie_aware,map_index_order\n";
  loo << "method,bit,map_without_bit,map_full\n";
  pr << "method,bits,radius,precision,recall\n";
  pn << "method,bits,n,precision\n";
  r2 << "method,bits,precision_r2,recall_r2\n";
  for (const auto& res : results) {
    const std::string v = res["variant"];
    for (const auto& rep : res["reports"]) {
      const std::size_t k = table_bits(res, rep);
      const bool full = rep.contains("pr_curve");
      curve << v << ',' << k << ',' << rep["epochs"] << ',' << rep["map_tie_aware"] << ',' << rep["map_index_order"]
            << '\n';
      if (!full) continue;
      table << v << ',' << k << ',' << rep["map_tie_aware"] << ',' << rep["map_index_order"] << ','
            << rep["precision_r2"] << ',' << rep["epochs"] << ',' << rep["train_seconds"] << '\n';
      r2 << v << ',' << k << ',' << rep["precision_r2"] << ',' << rep["recall_r2"] << '\n';
      for (std::size_t i = 0; i < rep["pr_curve"].size(); ++i)
        pr << v << ',' << k << ',' << i << ',' << rep["pr_curve"][i][0] << ',' << rep["pr_curve"][i][1] << '\n';
      for (const auto& p : rep["precision_at_n"]) pn << v << ',' << k << ',' << p[0] << ',' << p[1] << '\n';
      if (rep.contains("loo"))
        for (std::size_t b = 0; b < rep["loo"]["without_bit"].size(); ++b)
          loo << v << ',' << b << ',' << rep["loo"]["without_bit"][b] << ',' << rep["loo"]["full"] << '\n';
    }
  }
  // The tables and results.json are one set, committed together.
  nmhash::io::atomic_group outputs;
  const auto add_text = [&](const std::string& name, const std::string& text) {
    outputs.add(o.out + "/" + name).write(text.data(), text.size());
  };
  add_text("table.csv", table.str());
  add_text("map_vs_length.csv", curve.str());
  add_text("loo_per_bit.csv", loo.str());
  add_text("pr_curves.csv", pr.str());
  add_text("precision_at_n.csv", pn.str());
  add_text("precision_r2.csv", r2.str());
  const json sched = schedule_json(s);
  const json all = {{"protocol", protocol_name(o)},
                    {"model", o.data.arch.empty() ? "default" : o.data.arch},
                    {"loss", o.method},
                    {"seed", o.seed},
                    {"schedule", sched},
                    {"machine", machine_json()},
                    {"wall_seconds_this_invocation", wall},
                    {"runs", results}};
  add_text("results.json", all.dump(2) + "\n");
  outputs.commit();
}

// ---- statistics over seeds ---------------------------------------------

// Mean and sample standard deviation (n - 1; 0 for one value).
struct spread {
  double mean = 0, sd = 0;
  std::size_t n = 0;
};

spread spread_of(const std::vector<double>& v) {
  spread s;
  s.n = v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  return s;
}

json spread_json(const std::vector<double>& v) {
  const spread s = spread_of(v);
  return {{"mean", s.mean}, {"sd", s.sd}, {"values", v}};
}

// A paired difference is reported as beyond its spread when |mean| exceeds
// twice the standard deviation of the per-seed differences.
bool beyond_2sd(const spread& s) { return s.n >= 2 && std::abs(s.mean) > 2 * s.sd; }

std::string plus_minus(const spread& s, bool sign = false) {
  char buf[64];
  std::snprintf(buf, sizeof buf, sign ? "%+.4f +- %.4f" : "%.4f +- %.4f", s.mean, s.sd);
  return buf;
}

// The fully evaluated reports of every (variant, bits) cell, by seed, and
// the per-stage curve.
struct seed_cells {
  using key = std::pair<std::string, std::size_t>;
  std::vector<std::uint64_t> seeds;
  std::map<key, std::map<std::uint64_t, json>> full, curve;

  void add(std::uint64_t seed, const std::vector<json>& results) {
    seeds.push_back(seed);
    for (const auto& res : results)
      for (const auto& rep : res["reports"]) {
        const key k{res["variant"].get<std::string>(), table_bits(res, rep)};
        curve[k][seed] = rep;
        if (rep.contains("pr_curve")) full[k][seed] = rep;
      }
  }
  // A field of a cell over the seeds that have it, in seed order.
  static std::vector<double> field(const std::map<std::uint64_t, json>& cell, const char* name) {
    std::vector<double> v;
    for (const auto& [seed, rep] : cell) v.push_back(rep[name].get<double>());
    return v;
  }
  // Per-seed differences a - b of a field, over the seeds both have.
  std::vector<double> differences(const key& a, const key& b, const char* name) const {
    std::vector<double> d;
    if (!full.count(a) || !full.count(b)) return d;
    for (const auto& [seed, rep] : full.at(a))
      if (full.at(b).count(seed)) d.push_back(rep[name].get<double>() - full.at(b).at(seed)[name].get<double>());
    return d;
  }
};

std::string join_values(const std::vector<double>& v) {
  std::ostringstream o;
  o.precision(6);
  for (std::size_t i = 0; i < v.size(); ++i) o << (i ? ";" : "") << v[i];
  return o.str();
}

// The comparisons of Table 1 and the ablations: every variant against the
// fixed-length baseline, and the ablations against the NMLayer.
std::vector<std::pair<seed_cells::key, seed_cells::key>> comparisons(const seed_cells& c) {
  std::vector<std::pair<seed_cells::key, seed_cells::key>> out;
  for (const auto& [k, cell] : c.full) {
    if (k.first == "baseline") continue;
    const seed_cells::key base{"baseline", k.second}, nm{"nmlayer", k.second};
    if (c.full.count(base)) out.push_back({k, base});
    if (k.first != "nmlayer" && c.full.count(nm)) out.push_back({k, nm});
  }
  return out;
}

// OUT/results.json, table.csv, differences.csv and the curve CSVs as mean
// and standard deviation over the seeds.
void write_aggregate(const options& o, const h::progressive_schedule& sched, const seed_cells& c, double wall) {
  std::ostringstream table, diff, curve, loo, pr, pn, r2;
  table << "method,bits,seeds,epochs,map_tie_aware_mean,map_tie_aware_sd,map_index_order_mean,map_index_order_sd,"
           "precision_r2_mean,precision_r2_sd,train_seconds_mean,map_tie_aware_per_seed\n";
  diff << "method,versus,bits,seeds,map_tie_aware_diff_mean,map_tie_aware_diff_sd,beyond_2sd,per_seed\n";
  curve << "method,bits,epochs,seeds,map_tie_aware_mean,map_tie_aware_sd,map_index_order_mean,map_index_order_sd\n";
  loo << "method,rank,seeds,map_without_bit_mean,map_without_bit_sd,map_full_mean\n";
  pr << "method,bits,radius,seeds,precision_mean,precision_sd,recall_mean,recall_sd\n";
  pn << "method,bits,n,seeds,precision_mean,precision_sd\n";
  r2 << "method,bits,seeds,precision_r2_mean,precision_r2_sd,recall_r2_mean,recall_r2_sd\n";
  json cells = json::array(), diffs = json::array();
  for (const auto& [k, cell] : c.curve) {
    const auto m = spread_of(seed_cells::field(cell, "map_tie_aware"));
    const auto mi = spread_of(seed_cells::field(cell, "map_index_order"));
    curve << k.first << ',' << k.second << ',' << cell.begin()->second["epochs"] << ',' << m.n << ',' << m.mean << ','
          << m.sd << ',' << mi.mean << ',' << mi.sd << '\n';
  }
  for (const auto& [k, cell] : c.full) {
    const auto& [v, bits] = k;
    const auto map = seed_cells::field(cell, "map_tie_aware");
    const auto m = spread_of(map), mi = spread_of(seed_cells::field(cell, "map_index_order"));
    const auto p2 = spread_of(seed_cells::field(cell, "precision_r2")), rc2 = spread_of(seed_cells::field(cell, "recall_r2"));
    const auto ts = spread_of(seed_cells::field(cell, "train_seconds"));
    const json& first = cell.begin()->second;
    table << v << ',' << bits << ',' << m.n << ',' << first["epochs"] << ',' << m.mean << ',' << m.sd << ',' << mi.mean
          << ',' << mi.sd << ',' << p2.mean << ',' << p2.sd << ',' << ts.mean << ',' << join_values(map) << '\n';
    r2 << v << ',' << bits << ',' << p2.n << ',' << p2.mean << ',' << p2.sd << ',' << rc2.mean << ',' << rc2.sd << '\n';
    // Curves point by point (every seed has the same radii and N).
    const std::size_t radii = first["pr_curve"].size(), ns = first["precision_at_n"].size();
    for (std::size_t i = 0; i < radii; ++i) {
      std::vector<double> p, r;
      for (const auto& [seed, rep] : cell)
        if (rep["pr_curve"].size() == radii) {
          p.push_back(rep["pr_curve"][i][0].get<double>());
          r.push_back(rep["pr_curve"][i][1].get<double>());
        }
      const auto sp = spread_of(p), sr = spread_of(r);
      pr << v << ',' << bits << ',' << i << ',' << sp.n << ',' << sp.mean << ',' << sp.sd << ',' << sr.mean << ','
         << sr.sd << '\n';
    }
    for (std::size_t i = 0; i < ns; ++i) {
      std::vector<double> p;
      for (const auto& [seed, rep] : cell)
        if (rep["precision_at_n"].size() == ns) p.push_back(rep["precision_at_n"][i][1].get<double>());
      const auto sp = spread_of(p);
      pn << v << ',' << bits << ',' << first["precision_at_n"][i][0] << ',' << sp.n << ',' << sp.mean << ',' << sp.sd
         << '\n';
    }
    json jc = {{"variant", v},
               {"bits", bits},
               {"code_bits", first["bits"]},
               {"epochs", first["epochs"]},
               {"map_tie_aware", spread_json(map)},
               {"map_index_order", spread_json(seed_cells::field(cell, "map_index_order"))},
               {"precision_r2", spread_json(seed_cells::field(cell, "precision_r2"))},
               {"train_seconds", spread_json(seed_cells::field(cell, "train_seconds"))}};
    // Leave-one-bit-out MAP by rank (bit i of one seed is not bit i of
    // another): rank 1 is the bit whose deletion costs most.
    if (first.contains("loo")) {
      std::vector<std::vector<double>> sorted;
      std::vector<double> variance, full;
      for (const auto& [seed, rep] : cell) {
        if (!rep.contains("loo")) continue;
        sorted.push_back(rep["loo"]["without_bit"].get<std::vector<double>>());
        std::sort(sorted.back().begin(), sorted.back().end());
        variance.push_back(rep["loo"]["variance"].get<double>());
        full.push_back(rep["loo"]["full"].get<double>());
      }
      for (std::size_t b = 0; b < sorted.front().size(); ++b) {
        std::vector<double> at;
        for (const auto& s : sorted)
          if (b < s.size()) at.push_back(s[b]);
        const auto sb = spread_of(at);
        loo << v << ',' << b + 1 << ',' << sb.n << ',' << sb.mean << ',' << sb.sd << ',' << spread_of(full).mean
            << '\n';
      }
      jc["loo_variance"] = spread_json(variance);
    }
    cells.push_back(jc);
  }
  for (const auto& [a, b] : comparisons(c)) {
    const auto d = c.differences(a, b, "map_tie_aware");
    const auto s = spread_of(d);
    diff << a.first << ',' << b.first << ',' << a.second << ',' << s.n << ',' << s.mean << ',' << s.sd << ','
         << (beyond_2sd(s) ? "yes" : "no") << ',' << join_values(d) << '\n';
    diffs.push_back({{"variant", a.first},
                     {"versus", b.first},
                     {"bits", a.second},
                     {"map_tie_aware_difference", spread_json(d)},
                     {"beyond_2sd", beyond_2sd(s)}});
  }
  nmhash::io::atomic_group outputs;
  const auto add_text = [&](const std::string& name, const std::string& text) {
    outputs.add(o.out + "/" + name).write(text.data(), text.size());
  };
  add_text("table.csv", table.str());
  add_text("differences.csv", diff.str());
  add_text("map_vs_length.csv", curve.str());
  add_text("loo_per_bit.csv", loo.str());
  add_text("pr_curves.csv", pr.str());
  add_text("precision_at_n.csv", pn.str());
  add_text("precision_r2.csv", r2.str());
  json per_seed = json::object();
  for (auto seed : c.seeds) per_seed[std::to_string(seed)] = "seed-" + std::to_string(seed) + "/results.json";
  const json all = {{"protocol", protocol_name(o)},
                    {"model", o.data.arch.empty() ? "default" : o.data.arch},
                    {"loss", o.method},
                    {"seeds", c.seeds},
                    {"statistics", "mean and sample standard deviation (n - 1) over the seeds; a difference is "
                                   "paired by seed and beyond_2sd when |mean| > 2 sd of the per-seed differences"},
                    {"schedule", schedule_json(sched)},
                    {"machine", machine_json()},
                    {"wall_seconds_this_invocation", wall},
                    {"cells", cells},
                    {"differences", diffs},
                    {"per_seed", per_seed}};
  add_text("results.json", all.dump(2) + "\n");
  outputs.commit();
}

// Table 1 (NMLayer, baseline, their difference) and the ablations, on stdout.
void print_tables(const options& o, const h::progressive_schedule& sched, const seed_cells& c) {
  std::string seeds;
  for (auto s : c.seeds) seeds += (seeds.empty() ? "" : ",") + std::to_string(s);
  std::printf("\nTable 1 (%s, %s, preset %s; MAP tie-aware, mean +- sd over seed%s %s)\n", o.data.dataset.c_str(),
              o.method.c_str(), sched.name.c_str(), c.seeds.size() > 1 ? "s" : "", seeds.c_str());
  std::printf("%-22s", "method");
  for (std::size_t k : sched.lengths) std::printf("  %-19s", (std::to_string(k) + " bits").c_str());
  std::printf("\n");
  const auto cell_str = [&](const std::string& v, std::size_t k) -> std::string {
    const auto it = c.full.find({v, k});
    return it == c.full.end() ? "-" : plus_minus(spread_of(seed_cells::field(it->second, "map_tie_aware")));
  };
  const auto diff_str = [&](const std::string& a, const std::string& b, std::size_t k) -> std::string {
    const auto d = c.differences({a, k}, {b, k}, "map_tie_aware");
    if (d.empty()) return "-";
    const auto s = spread_of(d);
    return plus_minus(s, true) + (beyond_2sd(s) ? " *" : "");
  };
  for (const char* v : {"nmlayer", "baseline"}) {
    std::printf("%-22s", v);
    for (std::size_t k : sched.lengths) std::printf("  %-19s", cell_str(v, k).c_str());
    std::printf("\n");
  }
  std::printf("%-22s", "nmlayer - baseline");
  for (std::size_t k : sched.lengths) std::printf("  %-19s", diff_str("nmlayer", "baseline", k).c_str());
  std::printf("\n");
  bool header = false;
  for (const auto& [k, cell] : c.full) {
    if (k.first == "nmlayer" || k.first == "baseline") continue;
    if (!header) std::printf("\nAblations (MAP tie-aware; differences paired by seed)\n");
    header = true;
    // ours_star: the column is B_in, the code is shorter.
    const bool star = k.first == "ours_star";
    const std::string reduced = star ? " (B_in " + std::to_string(k.second) + " -> " +
                                           cell.begin()->second["bits"].dump() + " bits)"
                                     : "";
    std::printf("%-9s %2zu bits  %s   vs baseline %s   vs nmlayer %s%s\n", star ? "ours*" : k.first.c_str(), k.second,
                cell_str(k.first, k.second).c_str(), diff_str(k.first, "baseline", k.second).c_str(),
                diff_str(k.first, "nmlayer", k.second).c_str(), reduced.c_str());
  }
  std::printf("(* the paired difference exceeds twice its standard deviation)\n");
  if (c.seeds.size() == 1)
    std::printf("One seed shows no spread: run with --seeds 3 (or more) before reading a difference.\n");
  std::printf("machine: %s\n", nmhash_tool::machine().str().c_str());
}

}  // namespace

namespace {

int run_tool(int argc, char** argv, const nmhash_tool::mpi_session& session) {
  CLI::App app{"nmhash_reproduce: the NMLayer paper's experiments (Table 1, Fig. 4, Fig. 5) on fmnist-dpsh or --dataset"};
  options o;
  app.add_option("--preset", o.preset, "schedule preset: quick (minutes), medium (N1 = 8), paper (section 4.1)")
      ->check(CLI::IsMember({"quick", "medium", "paper"}));
  app.add_option("--out", o.out, "output directory");
  app.add_option("--variants", o.variants,
                 "runs: nmlayer baseline timed (fixed-length, the nmlayer run's training time) random select "
                 "dropout fclayer ours_star (the paper's Ours*: B_in = K bits reduced to round(0.8 K), in the K column)")
      ->check(CLI::IsMember({"nmlayer", "baseline", "timed", "random", "select", "dropout", "fclayer", "ours_star"}))
      ->delimiter(',');
  app.add_option("--ablation-lengths", o.ablation_lengths,
                 "code lengths of the ablations (default: 32 for quick, all for paper)")
      ->delimiter(',');
  app.add_option("--baseline-epochs", o.baseline_epochs,
                 "epochs of fixed-length runs (default: those the progressive run spends to reach the length)");
  app.add_option("--loo-bits", o.loo_bits, "code length of the per-bit leave-one-bit-out MAP (Fig. 4a)");
  app.add_option("--method", o.method,
                 "hashing loss of every run: eq7 (the paper's), dpsh, dhn, dsh, hashnet (with its scaled tanh "
                 "and continuation; sigmoid scale 0.1)")
      ->check(CLI::IsMember(nmhash::loss::loss_names()));
  app.add_option("--alpha", o.alpha, "quantization weight of dpsh, dhn and dsh");
  app.add_option("--gradient", o.gradient, "gradient of A: paper_eq4 (default) or chain_rule")
      ->check(CLI::IsMember({"paper_eq4", "chain_rule"}));
  app.add_option("--truncation", o.truncation,
                 "entries of A a truncation merges: top_m (default, the paper's largest m) or one_per_node "
                 "(largest m with each node in at most one pair)")
      ->check(CLI::IsMember({"top_m", "one_per_node"}));
  app.add_option("--merges", o.merges, "override m, nodes removed per truncation")->check(CLI::PositiveNumber);
  app.add_option("--warmup-epochs", o.warmup, "override the warm-up epochs at B_in")->check(CLI::NonNegativeNumber);
  app.add_option("--active-epochs", o.n0, "override N0")->check(CLI::PositiveNumber);
  app.add_option("--frozen-epochs", o.n1, "override N1")->check(CLI::NonNegativeNumber);
  app.add_option("--lr", o.lr, "override the backbone learning rate")->check(CLI::PositiveNumber);
  app.add_option("--nm-lr", o.nm_lr, "override the learning rate of A")->check(CLI::PositiveNumber);
  app.add_option("--eta", o.eta, "override eta of Eq. (7)")->check(CLI::NonNegativeNumber);
  app.add_option("--frozen-weight", o.frozen_weight, "override the frozen-loss weight")->check(CLI::NonNegativeNumber);
  app.add_option("--vote-tie", o.vote_tie,
                 "tie rule of an even node's majority vote: first_child (default) or summed_output (the sign of the "
                 "summed children's outputs)")
      ->check(CLI::IsMember({"first_child", "summed_output"}));
  app.add_option("--bank-after-truncation", o.bank,
                 "memory bank after a truncation: recompute (default, re-encode every training image) or "
                 "mean_columns (the mean of the merged nodes' columns)")
      ->check(CLI::IsMember({"mean_columns", "recompute"}));
  app.add_flag("--reset-optimizer", o.reset_optimizer, "clear the optimizer's state at every truncation");
  app.add_option("--validation-refresh", o.validation_refresh,
                 "override the batches between re-encodings of V in the active phase (1: every batch)")
      ->check(CLI::PositiveNumber);
  app.add_option("--init-from", o.init_from,
                 "start every run's backbone from this safetensors file (a model file of nmhash_train or a "
                 "PyTorch nn.Sequential export): tensors of the layers before the hashing layer whose name and "
                 "shape match")
      ->check(CLI::ExistingFile);
  app.add_option("--seed", o.seed, "seed of initialisation, shuffling and child draws (the first, with --seeds)");
  app.add_option("--seeds", o.seeds,
                 "run every variant with N seeds (--seed, --seed + 1, ...), each in OUT/seed-S/, and report mean "
                 "and standard deviation")
      ->check(nmhash_tool::integer_range(1, 100));
  o.data.add_options(app);
  auto* limits = app.add_option_group("smoke tests", "evenly spaced subsets (not the protocol)");
  limits->add_option("--train-limit", o.train_limit, "at most N training images (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  limits->add_option("--query-limit", o.query_limit, "at most N queries (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  limits->add_option("--db-limit", o.db_limit, "at most N database images (0 or absent: all)")->check(nmhash_tool::integer_range(0, UINT32_MAX));
  bool no_resume = false;
  app.add_flag("--no-resume", no_resume, "ignore finished runs and checkpoints in --out");
  app.add_flag("--reported-only", o.reported_only,
               "evaluate the nmlayer run at the reported lengths only, not after every stage (no Fig. 4b points "
               "between them; training is the same)");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  o.resume = !no_resume;
  nmhash_tool::tool_ranks rk;
  try {
    rk = nmhash_tool::ranks_of(session);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_reproduce: error: %s\n", e.what());
    return 1;
  }
  try {
    const auto t0 = clock_type::now();
    auto sched = h::preset(o.preset);
    if (!o.gradient.empty()) sched.gradient = h::parse_active_gradient(o.gradient);
    if (!o.truncation.empty()) sched.truncation = h::parse_truncation_rule(o.truncation);
    if (!o.vote_tie.empty()) sched.tie = h::parse_vote_tie(o.vote_tie);
    if (!o.bank.empty()) sched.bank_after_truncation = h::parse_bank_remap(o.bank);
    if (o.reset_optimizer) sched.reset_optimizer = true;
    if (o.validation_refresh >= 0) sched.validation_refresh = static_cast<std::size_t>(o.validation_refresh);
    const bool custom = o.merges >= 0 || o.warmup >= 0 || o.n0 >= 0 || o.n1 >= 0 || o.lr >= 0 || o.nm_lr >= 0 ||
                        o.eta >= 0 || o.frozen_weight >= 0 || !o.gradient.empty() || !o.truncation.empty() ||
                        !o.vote_tie.empty() || !o.bank.empty() || o.reset_optimizer || o.validation_refresh >= 0;
    if (o.merges >= 0) sched.merges = static_cast<std::size_t>(o.merges);
    if (o.warmup >= 0) sched.warmup_epochs = static_cast<std::size_t>(o.warmup);
    if (o.n0 >= 0) sched.active_epochs = static_cast<std::size_t>(o.n0);
    if (o.n1 >= 0) sched.frozen_epochs = static_cast<std::size_t>(o.n1);
    if (o.lr >= 0) sched.backbone_lr = o.lr;
    if (o.nm_lr >= 0) sched.nm_lr = o.nm_lr;
    if (o.eta >= 0) sched.eta = o.eta;
    if (o.frozen_weight >= 0) sched.frozen_weight = o.frozen_weight;
    if (o.method != "eq7") sched.name += "+" + o.method;
    if (custom) sched.name += "+custom";
    sched.validate();
    const auto runs = make_runs(o, sched);
    // One data set and split for every seed; `cur` is the seed being run.
    options cur = o;
    context cx{cur, o.data.open(), {}, {}, {}, {}, {}, 0, rk};
    cx.split.train = subsample(cx.split.train, o.train_limit);
    cx.split.train_nm = subsample(cx.split.train_nm, o.train_limit);
    cx.split.query = subsample(cx.split.query, o.query_limit);
    cx.split.database = subsample(cx.split.database, o.db_limit);
    std::string why;
    cx.arch = o.data.architecture(cx.split, why);
    cx.transform = o.data.transform(cx.split, cx.arch, cx.split.train);
    cx.loader = std::make_unique<nmhash::data::batch_loader<real>>(cx.split.pool, cx.transform);
    cx.query_labels = cx.split.pool->labels().subset(cx.split.query);
    cx.db_labels = cx.split.pool->labels().subset(cx.split.database);
    if (cx.split.pool->labels().is_multi()) cx.map_at = std::min<std::size_t>(5000, cx.split.database.size());
    std::printf("architecture %s (%s): input %s, %s\ntransform: %s\n", cx.arch.name.c_str(), why.c_str(),
                cx.arch.input_str().c_str(), cx.arch.layers.c_str(), nmhash_tool::describe(cx.transform).c_str());
    std::printf("machine: %s\n", nmhash_tool::machine().str().c_str());
    if (rk.size > 1) std::printf("data parallel over %d ranks (rank 0 writes)\n", rk.size);
    if (rk.root()) std::filesystem::create_directories(o.out);
    // One reproduction per output directory at a time (rank 0 writes it).
    std::unique_ptr<nmhash::io::directory_lock> out_lock;
    if (rk.root()) out_lock = std::make_unique<nmhash::io::directory_lock>(o.out);
    std::printf("%s reproduction, preset %s (B_in %zu, m %zu, warm-up %zu, N0 %zu, N1 %zu, %s lr %g, A lr %g, "
                "eta %g, frozen weight %g, tie %s, bank %s%s), seeds %llu to %llu, %zu runs each -> %s\n",
                o.data.dataset.c_str(), sched.name.c_str(), sched.b_in, sched.merges, sched.warmup_epochs,
                sched.active_epochs, sched.frozen_epochs, sched.optimizer.c_str(), sched.backbone_lr, sched.nm_lr,
                sched.eta, sched.frozen_weight, to_string(sched.tie), to_string(sched.bank_after_truncation),
                sched.reset_optimizer ? ", optimizer reset at truncations" : "",
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.seed + o.seeds - 1),
                runs.size(), o.out.c_str());
    seed_cells cells;
    for (std::size_t i = 0; i < o.seeds; ++i) {
      cur.seed = o.seed + i;
      cur.out = o.out + "/seed-" + std::to_string(cur.seed);
      if (rk.root()) std::filesystem::create_directories(cur.out);
      std::printf("\n== seed %llu -> %s\n", static_cast<unsigned long long>(cur.seed), cur.out.c_str());
      std::vector<json> results;
      for (run_spec r : runs) {
        if (r.timed) r.sched.warmup_epochs = equal_time_epochs(results, r.bits, cx.split.train.size(),
                                                               cx.split.train_nm.size());
        results.push_back(run_spec_dispatch(cx, r));
        if (rk.root()) write_summary(cur, sched, results, std::chrono::duration<double>(clock_type::now() - t0).count());
      }
      cells.add(cur.seed, results);
      if (rk.root()) write_aggregate(o, sched, cells, std::chrono::duration<double>(clock_type::now() - t0).count());
    }
    print_tables(o, sched, cells);
    std::printf("wrote %s/{results.json, table.csv, differences.csv, map_vs_length.csv, loo_per_bit.csv, "
                "pr_curves.csv, precision_at_n.csv, precision_r2.csv} and seed-S/ per seed\n",
                o.out.c_str());
    return 0;
  } catch (const std::exception& e) {
#ifdef NMHASH_TOOL_MPI
    if (rk.comm) return nmhash_tool::mpi_error(*rk.comm, "nmhash_reproduce", e);
#endif
    std::fprintf(stderr, "nmhash_reproduce: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(false);
  const nmhash_tool::mpi_session session(argc, argv);
  return nmhash_tool::finish("nmhash_reproduce", run_tool(argc, argv, session));
}
