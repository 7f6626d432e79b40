// nmhash_reproduce: the NMLayer paper's experiments on fmnist-dpsh (or any
// --dataset and --arch of nmhash_train). Each run is a training run of the
// library (nmhash::train::run) in OUT/seed-S/runs/<id>/, skipped when its
// result.json exists and resumed from its checkpoint otherwise:
//   nmlayer        progressive NMLayer from B_in bits, evaluated after every
//                  stage (Fig. 4b) and fully at the reported lengths (Table 1)
//   baseline-K     fixed-length at K bits, the epochs the nmlayer run spent
//                  to reach K (Table 1, Fig. 4); timed-K: its training time
//   random, select ablations without active / frozen phase (Fig. 5)
//   dropout-K      dropout (0.5) before the hashing layer (Fig. 5)
//   fclayer-K      a fully connected B_in -> K layer instead of the NMLayer
//   ours_star-K    the paper's Ours*: B_in = K bits reduced to round(0.8 K)
// OUT/results.json, table.csv, differences.csv and the curve CSVs (mean and
// sd over --seeds) feed scripts/plot_reproduction.py. Under mpirun every run
// is data parallel (rank 0 prints and writes).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "train_options.hpp"
#include "tool_common.hpp"
#include "nmhash/core/statistics.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/train/run.hpp"

namespace {

namespace h = nmhash::hashing;
namespace tr = nmhash::train;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string preset = "quick", out = "results/reproduce";
  tr::run_config base;  // data set, method, loss settings, --init-from; seed: the first
  std::vector<std::string> variants{"nmlayer", "baseline", "random", "select", "dropout", "fclayer"};
  std::vector<std::size_t> ablation_lengths;  // default: 32 (quick) or every length (paper)
  std::size_t loo_bits = 32, baseline_epochs = 0;
  std::string gradient, truncation, method = "eq7", vote_tie, bank;
  h::progressive_schedule over;  // the values of the preset's overrides
  std::size_t seeds = 1;  // --seeds N runs seed, seed + 1, ..., seed + N - 1
  bool reported_only = false;  // evaluate the nmlayer run at the reported lengths only
};

struct run_spec {
  std::string id, variant;
  h::progressive_schedule sched;
  h::reduction mode = h::reduction::merge;
  tr::head_config head;        // dropout, or a linear layer after the hashing layer
  std::size_t bits = 0;        // final code length
  bool timed = false;          // epochs set from the nmlayer run's training time (equal_time_epochs)
  std::set<std::size_t> full_eval;  // lengths evaluated with every metric
  bool eval_every_stage = false;
};

// The machine, build and threads a run trained on.
json machine_json() {
  const auto m = nmhash_tool::machine();
  return {{"cpu", m.cpu}, {"features", m.features}, {"compiler", m.compiler}, {"flags", m.flags}, {"threads", m.threads}};
}

struct context {
  const options& o;
  tr::prepared_data data;
  tr::run_config cur;  // the seed being run
  std::string seed_dir;  // its output directory
  std::size_t map_at = 0;  // MAP@k on multi-label data
  nmhash_tool::tool_ranks rk{};  // under mpirun: data-parallel training, rank 0 writes
};

tr::run_config config_of(const context& cx, const run_spec& r) {
  tr::run_config c = cx.cur;
  c.schedule = r.sched;
  c.reduction = r.mode;
  c.head = r.head;
  c.loss_settings.eta = r.sched.eta;
  return c;
}

// The evaluation of run `r` after `epochs_done` epochs (its seconds of
// training so far), into its reports; the model file at fully evaluated
// lengths.
void evaluate(context& cx, const run_spec& r, tr::run& run, std::size_t epochs_done, double train_seconds) {
  const std::size_t k = run.nodes();
  const bool full = r.full_eval.count(k) > 0;
  if (!full && !r.eval_every_stage) return;
  const auto ev = run.evaluate(cx.map_at ? std::vector<std::size_t>{cx.map_at} : std::vector<std::size_t>{},
                               {1, 10, 50, 100, 200, 500, 1000, 2000, 5000});
  const auto& m = ev.metrics;
  json rep = {{"bits", k}, {"epochs", epochs_done}, {"train_seconds", train_seconds},
              {"map_tie_aware", m.map.tie_aware}, {"map_index_order", m.map.index_order},
              {"precision_r2", m.within_radius.precision}, {"recall_r2", m.within_radius.recall},
              {"distinct_database_codes", ev.spread.distinct}, {"largest_code_share", ev.spread.largest_share},
              {"grouping", run.grouping().str()}};
  if (cx.map_at)
    rep["map_at"] = {{"k", m.map_at_k[0]}, {"tie_aware", m.map_at[0].tie_aware}, {"index_order", m.map_at[0].index_order}};
  if (full) {
    json pr = json::array(), pn = json::array();
    for (const auto& p : m.pr_curve) pr.push_back({p.precision, p.recall});
    for (std::size_t i = 0; i < m.precision_at_n.size(); ++i) pn.push_back({m.precision_at_n[i], m.precision_at[i].tie_aware});
    rep["pr_curve"] = pr;
    rep["precision_at_n"] = pn;
    if (k == cx.o.loo_bits && (r.variant == "nmlayer" || r.variant == "baseline")) {
      const auto loo = nmhash::leave_one_bit_out_map(ev.query, ev.database, ev.query_labels, ev.database_labels);
      const auto sp = nmhash::spread_of(loo.without_bit);  // the variance over the k bits, not k - 1
      rep["loo"] = {{"full", loo.full}, {"without_bit", loo.without_bit}, {"mean", sp.mean},
                    {"variance", sp.sd * sp.sd * static_cast<double>(k - 1) / static_cast<double>(k)}};
    }
    if (!r.head.fc_from)  // the fclayer variant's extra layer is not an architecture spec
      run.save_model(run.directory() + "/model-" + std::to_string(k) + ".safetensors", {{"run", r.id}});
  }
  rep["eval_seconds"] = ev.seconds;
  json& reports = run.notes()["reports"];
  reports.erase(std::remove_if(reports.begin(), reports.end(), [&](const json& x) { return x["bits"] == k; }),
                reports.end());
  reports.push_back(rep);
  if (isatty(fileno(stderr))) std::fprintf(stderr, "\n");
  std::printf("[%s] %zu bits after %zu epochs: MAP tie-aware %.4f index-order %.4f, precision r<=2 %.4f (eval %.0f s)\n",
              r.id.c_str(), k, epochs_done, m.map.tie_aware, m.map.index_order, m.within_radius.precision, ev.seconds);
  if (ev.spread.collapsed())
    std::printf("[%s] WARNING: the %zu-bit codes have collapsed (%zu distinct database codes, %.1f%% share one code)\n",
                r.id.c_str(), k, ev.spread.distinct, 100 * ev.spread.largest_share);
  std::fflush(stdout);
}

// Run r of the current seed (resumed from its checkpoint); its result.
json run_one(context& cx, const run_spec& r) {
  tr::run run(config_of(cx, r), cx.data, cx.seed_dir + "/runs/" + r.id, nmhash_tool::run_ranks_of(cx.rk));
  nmhash_tool::print_init_report(run);
  if (!run.notes().contains("reports")) run.notes()["reports"] = json::array();
  if (run.resumed_epochs())
    std::printf("[%s] resuming after epoch %zu of %zu\n", r.id.c_str(), run.resumed_epochs(), run.plan().size());
  const bool tty = isatty(fileno(stderr));
  const std::size_t epochs = run.plan().size();
  run.on_batch = [&](const h::epoch_record& e, std::size_t done, std::size_t total) {
    if (!tty) return;
    const int width = 24, filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r[%s] epoch %zu/%zu %-6s K=%-2zu [%.*s%*s] loss %.2f %5.0f img/s", r.id.c_str(), e.epoch,
                 epochs, to_string(e.phase), e.nodes, filled, "########################", width - filled, "", e.loss,
                 static_cast<double>(done) / e.seconds);
    std::fflush(stderr);
  };
  run.on_stage = [&](std::size_t done, double pending) { evaluate(cx, r, run, done, run.train_seconds() + pending); };
  run.on_epoch = [&](const tr::epoch_report& rep) {
    const auto& e = rep.record;
    if (tty) std::fprintf(stderr, "\n");
    std::printf("[%s] epoch %zu/%zu %s K=%zu loss %.3f%s %.1f s (scoring %.1f%%)\n", r.id.c_str(), e.epoch, epochs,
                to_string(e.phase), e.nodes, e.loss,
                e.phase == h::epoch_phase::active && r.mode == h::reduction::merge
                    ? (" active loss " + std::to_string(e.active_loss)).c_str()
                    : "",
                e.seconds, 100 * e.scoring_seconds / e.seconds);
    std::fflush(stdout);
  };
  run.train();
  const json& reports = run.notes()["reports"];
  if (reports.empty() || reports.back()["bits"] != run.nodes()) evaluate(cx, r, run, run.epochs_done(), run.train_seconds());

  double active_s = 0, scoring_s = 0;
  for (const auto& e : run.history())
    if (e["phase"] == "active") {
      active_s += e["seconds"].get<double>();
      scoring_s += e["scoring_seconds"].get<double>();
    }
  const json result = {{"id", r.id}, {"variant", r.variant}, {"reduction", to_string(r.mode)},
                       {"schedule", r.sched.name}, {"b_in", r.sched.b_in}, {"bits", r.bits}, {"seed", cx.cur.seed},
                       {"schedule_json", tr::to_json(r.sched)}, {"config", run.identity()}, {"machine", machine_json()},
                       {"train_images", run.train_ids().size()}, {"epochs", epochs},
                       {"train_seconds", run.train_seconds()}, {"active_seconds", active_s},
                       {"scoring_seconds", scoring_s},
                       {"scoring_share_of_active_epochs", active_s > 0 ? scoring_s / active_s : 0.0},
                       {"reports", reports}, {"history", run.history()}};
  if (cx.rk.root()) nmhash::io::write_file(run.directory() + "/result.json", result.dump(2) + "\n");
  // Rank 0's result (its timings) on every rank: later runs depend on it.
  return cx.rk.size > 1 ? json::parse(cx.rk.share(result.dump())) : result;
}

// A finished run's result, or the run.
json run_or_skip(context& cx, const run_spec& r) {
  const std::string result_path = cx.seed_dir + "/runs/" + r.id + "/result.json";
  if (!cx.cur.resume || !cx.rk.exists(result_path)) return run_one(cx, r);
  const std::vector<unsigned char> bytes = cx.rk.read(result_path);
  const json res = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  nmhash::require(!res.is_discarded(), result_path, ": not valid JSON");
  const tr::run_config c = config_of(cx, r);
  const bool same = res.value("config", json()) == tr::run_identity(c, cx.data) &&
                    res.value("epochs", json()) == h::plan_epochs(c.schedule).size();
  nmhash::require(same, result_path, ": result of another seed, preset, data set or architecture (use another --out "
                  "or --no-resume)");
  std::printf("[%s] done before: %s\n", r.id.c_str(), result_path.c_str());
  return res;
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
  // A run of the base schedule with the given lengths, evaluated fully at `full`.
  auto spec = [&](const std::string& variant, const std::string& id, std::vector<std::size_t> lengths_to,
                  std::set<std::size_t> full) {
    run_spec r;
    r.variant = variant;
    r.id = id;
    r.sched = base;
    r.sched.lengths = std::move(lengths_to);
    r.bits = r.sched.lengths.empty() ? base.b_in : r.sched.lengths.back();
    r.full_eval = std::move(full);
    return r;
  };
  auto fixed = [&](const std::string& variant, std::size_t k) {
    run_spec r = spec(variant, variant + "-" + std::to_string(k), {}, {k});
    r.sched.b_in = r.bits = k;
    r.sched.warmup_epochs = o.baseline_epochs ? o.baseline_epochs : h::epochs_to_reach(base, k);
    return r;
  };
  if (want("nmlayer")) {
    runs.push_back(spec("nmlayer", "nmlayer", lengths, all));
    runs.back().eval_every_stage = !o.reported_only;
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
  std::vector<std::size_t> to_abl_min;
  for (std::size_t k : lengths)
    if (k >= abl_min) to_abl_min.push_back(k);
  for (const char* v : {"random", "select"})
    if (want(v)) {
      runs.push_back(spec(v, v, to_abl_min, {abl.begin(), abl.end()}));
      runs.back().mode = std::string(v) == "random" ? h::reduction::random : h::reduction::select;
    }
  if (want("ours_star"))
    for (std::size_t k : abl) {
      run_spec r = spec("ours_star", "ours_star-" + std::to_string(k), {ours_star_length(k)}, {ours_star_length(k)});
      r.sched.b_in = k;
      // The epochs of baseline-K: the stages down to round(0.8 K), the rest
      // as warm-up at B_in = K.
      const std::size_t budget = o.baseline_epochs ? o.baseline_epochs : h::epochs_to_reach(base, k);
      const std::size_t staged = h::stage_targets(r.sched).size() * (base.active_epochs + base.frozen_epochs);
      r.sched.warmup_epochs = budget > staged ? budget - staged : 0;
      runs.push_back(r);
    }
  if (want("dropout"))
    for (std::size_t k : abl) {
      auto r = fixed("dropout", k);
      r.head.dropout = 0.5;
      r.head.dropout_seed = base.name.size() + 17;
      runs.push_back(r);
    }
  if (want("fclayer"))
    for (std::size_t k : abl) {
      auto r = fixed("fclayer", k);
      r.head.fc_from = base.b_in;
      runs.push_back(r);
    }
  return runs;
}


// ---- statistics over seeds ---------------------------------------------

using nmhash::spread;
using nmhash::spread_of;

json spread_json(const std::vector<double>& v) {
  const spread s = spread_of(v);
  return {{"mean", s.mean}, {"sd", s.sd}, {"values", v}};
}

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
void write_tables(const options& o, const std::string& dir, const h::progressive_schedule& sched, const seed_cells& c,
                  json all) {
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
    json jc = {{"variant", v}, {"bits", bits}, {"code_bits", first["bits"]}, {"epochs", first["epochs"]},
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
    diffs.push_back({{"variant", a.first}, {"versus", b.first}, {"bits", a.second},
                     {"map_tie_aware_difference", spread_json(d)}, {"beyond_2sd", beyond_2sd(s)}});
  }
  nmhash::io::atomic_group outputs;
  const auto add_text = [&](const std::string& name, const std::string& text) {
    outputs.add(dir + "/" + name).write(text.data(), text.size());
  };
  for (const auto& [name, text] : {std::pair{"table.csv", &table}, {"differences.csv", &diff},
                                    {"map_vs_length.csv", &curve}, {"loo_per_bit.csv", &loo}, {"pr_curves.csv", &pr},
                                    {"precision_at_n.csv", &pn}, {"precision_r2.csv", &r2}})
    add_text(name, text->str());
  const auto& d = o.base.data;
  const bool subset = d.train_limit || d.query_limit || d.db_limit;
  all.update({{"protocol", subset ? d.dataset + " subset (smoke test)" : d.dataset},
              {"model", d.arch.empty() ? "default" : d.arch}, {"loss", o.method},
              {"statistics", "mean and sample standard deviation (n - 1) over the seeds; a difference is "
                             "paired by seed and beyond_2sd when |mean| > 2 sd of the per-seed differences"},
              {"schedule", tr::to_json(sched)}, {"machine", machine_json()}, {"cells", cells},
              {"differences", diffs}});
  add_text("results.json", all.dump(2) + "\n");
  outputs.commit();
}

// Table 1 (NMLayer, baseline, their difference) and the ablations, on stdout.
void print_tables(const options& o, const h::progressive_schedule& sched, const seed_cells& c) {
  std::string seeds;
  for (auto s : c.seeds) seeds += (seeds.empty() ? "" : ",") + std::to_string(s);
  std::printf("\nTable 1 (%s, %s, preset %s; MAP tie-aware, mean +- sd over seed%s %s)\n", o.base.data.dataset.c_str(),
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
  app.add_option("--ablation-lengths", o.ablation_lengths, "code lengths of the ablations (default: 32; paper: all)")
      ->delimiter(',');
  app.add_option("--baseline-epochs", o.baseline_epochs,
                 "epochs of fixed-length runs (default: those the progressive run spends to reach the length)");
  app.add_option("--loo-bits", o.loo_bits, "code length of the per-bit leave-one-bit-out MAP (Fig. 4a)");
  app.add_option("--method", o.method, "hashing loss of every run: eq7 (the paper's), dpsh, dhn, dsh, hashnet")
      ->check(CLI::IsMember(nmhash::loss::loss_names()));
  // Overrides of the preset's schedule (o.over), applied when given.
  auto& v = o.over;
  app.add_option("--gradient", o.gradient, "gradient of A: paper_eq4 (default) or chain_rule")
      ->check(CLI::IsMember({"paper_eq4", "chain_rule"}));
  app.add_option("--truncation", o.truncation,
                 "entries of A a truncation merges: top_m (default, the paper's largest m) or one_per_node "
                 "(largest m with each node in at most one pair)")
      ->check(CLI::IsMember({"top_m", "one_per_node"}));
  app.add_option("--merges", v.merges, "override m, nodes removed per truncation")->check(CLI::PositiveNumber);
  app.add_option("--warmup-epochs", v.warmup_epochs, "override the warm-up epochs at B_in")->check(CLI::NonNegativeNumber);
  app.add_option("--active-epochs", v.active_epochs, "override N0")->check(CLI::PositiveNumber);
  app.add_option("--frozen-epochs", v.frozen_epochs, "override N1")->check(CLI::NonNegativeNumber);
  app.add_option("--lr", v.backbone_lr, "override the backbone learning rate")->check(CLI::PositiveNumber);
  app.add_option("--nm-lr", v.nm_lr, "override the learning rate of A")->check(CLI::PositiveNumber);
  app.add_option("--eta", v.eta, "override eta of Eq. (7)")->check(CLI::NonNegativeNumber);
  app.add_option("--frozen-weight", v.frozen_weight, "override the frozen-loss weight")->check(CLI::NonNegativeNumber);
  app.add_option("--vote-tie", o.vote_tie,
                 "tie rule of an even node's majority vote: first_child (default) or summed_output (the sign of the "
                 "summed children's outputs)")
      ->check(CLI::IsMember({"first_child", "summed_output"}));
  app.add_option("--bank-after-truncation", o.bank,
                 "memory bank after a truncation: recompute (default, re-encode every training image) or "
                 "mean_columns (the mean of the merged nodes' columns)")
      ->check(CLI::IsMember({"mean_columns", "recompute"}));
  app.add_flag("--reset-optimizer", v.reset_optimizer, "clear the optimizer's state at every truncation");
  app.add_option("--validation-refresh", v.validation_refresh,
                 "override the batches between re-encodings of V in the active phase (1: every batch)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seeds", o.seeds, "run every variant with seeds --seed to --seed + N - 1, in OUT/seed-S/; mean, sd")
      ->check(nmhash_tool::integer_range(1, 100));
  nmhash_tool::add_data_options(app, o.base.data);
  nmhash_tool::add_run_options(app, o.base);
  app.add_flag("--reported-only", o.reported_only,
               "evaluate the nmlayer run at the reported lengths only (no Fig. 4b points between; same training)");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  nmhash_tool::tool_ranks rk;
  try {
    rk = nmhash_tool::ranks_of(session);
    const auto t0 = clock_type::now();
    auto sched = h::preset(o.preset);
    bool custom = false;
    const auto given = [&](const char* name) {
      const bool is = app.get_option(name)->count() > 0;
      custom = custom || is;
      return is;
    };
    if (given("--gradient")) sched.gradient = h::parse_active_gradient(o.gradient);
    if (given("--truncation")) sched.truncation = h::parse_truncation_rule(o.truncation);
    if (given("--vote-tie")) sched.tie = h::parse_vote_tie(o.vote_tie);
    if (given("--bank-after-truncation")) sched.bank_after_truncation = h::parse_bank_remap(o.bank);
    for (const auto& [name, field] : {std::pair{"--merges", &h::progressive_schedule::merges},
                                      {"--warmup-epochs", &h::progressive_schedule::warmup_epochs},
                                      {"--active-epochs", &h::progressive_schedule::active_epochs},
                                      {"--frozen-epochs", &h::progressive_schedule::frozen_epochs},
                                      {"--validation-refresh", &h::progressive_schedule::validation_refresh}})
      if (given(name)) sched.*field = v.*field;
    for (const auto& [name, field] : {std::pair{"--lr", &h::progressive_schedule::backbone_lr},
                                      {"--nm-lr", &h::progressive_schedule::nm_lr},
                                      {"--eta", &h::progressive_schedule::eta},
                                      {"--frozen-weight", &h::progressive_schedule::frozen_weight}})
      if (given(name)) sched.*field = v.*field;
    if (given("--reset-optimizer")) sched.reset_optimizer = true;
    if (o.method != "eq7") sched.name += "+" + o.method;
    if (custom) sched.name += "+custom";
    sched.validate();
    o.base.loss = tr::parse_method(o.method);
    const auto runs = make_runs(o, sched);
    // One data set and split for every seed; `cx.cur` is the seed being run.
    context cx{o, tr::prepare(o.base.data), o.base, "", 0, rk};
    if (cx.data.all_labels().is_multi()) cx.map_at = 5000;
    nmhash_tool::print_prepared(cx.data);
    std::printf("machine: %s\n", nmhash_tool::machine().str().c_str());
    if (rk.size > 1) std::printf("data parallel over %d ranks (rank 0 writes)\n", rk.size);
    if (rk.root()) std::filesystem::create_directories(o.out);
    // One reproduction per output directory at a time (rank 0 writes it).
    std::unique_ptr<nmhash::io::directory_lock> out_lock;
    if (rk.root()) out_lock = std::make_unique<nmhash::io::directory_lock>(o.out);
    std::printf("%s reproduction, preset %s (B_in %zu, m %zu, warm-up %zu, N0 %zu, N1 %zu, %s lr %g, A lr %g, "
                "eta %g, frozen weight %g, tie %s, bank %s%s), seeds %llu to %llu, %zu runs each -> %s\n",
                o.base.data.dataset.c_str(), sched.name.c_str(), sched.b_in, sched.merges, sched.warmup_epochs,
                sched.active_epochs, sched.frozen_epochs, nmhash::optim::to_string(sched.optimizer), sched.backbone_lr, sched.nm_lr,
                sched.eta, sched.frozen_weight, to_string(sched.tie), to_string(sched.bank_after_truncation),
                sched.reset_optimizer ? ", optimizer reset at truncations" : "",
                static_cast<unsigned long long>(o.base.seed), static_cast<unsigned long long>(o.base.seed + o.seeds - 1),
                runs.size(), o.out.c_str());
    seed_cells cells;
    for (std::size_t i = 0; i < o.seeds; ++i) {
      cx.cur.seed = o.base.seed + i;
      cx.seed_dir = o.out + "/seed-" + std::to_string(cx.cur.seed);
      if (rk.root()) std::filesystem::create_directories(cx.seed_dir);
      std::printf("\n== seed %llu -> %s\n", static_cast<unsigned long long>(cx.cur.seed), cx.seed_dir.c_str());
      std::vector<json> results;
      for (run_spec r : runs) {
        if (r.timed)
          r.sched.warmup_epochs =
              equal_time_epochs(results, r.bits, cx.data.split.train.size(), cx.data.split.train_nm.size());
        results.push_back(run_or_skip(cx, r));
        seed_cells one;
        one.add(cx.cur.seed, results);
        if (rk.root()) write_tables(o, cx.seed_dir, sched, one, {{"seed", cx.cur.seed}, {"runs", results}});
      }
      cells.add(cx.cur.seed, results);
      json per_seed = json::object();
      for (auto seed : cells.seeds) per_seed[std::to_string(seed)] = "seed-" + std::to_string(seed) + "/results.json";
      const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
      if (rk.root())
        write_tables(o, o.out, sched, cells,
                     {{"seeds", cells.seeds}, {"per_seed", per_seed}, {"wall_seconds_this_invocation", wall}});
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
