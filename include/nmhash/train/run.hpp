// One training run, checkpointed and resumable: the network and optimizer
// of a run_config (config.hpp) on prepared data (setup.hpp), trained by
// hashing::progressive_trainer (a fixed-length run is a progressive run
// without stages) with HashNet's beta schedule, a checkpoint written
// atomically after every epoch into the run's directory, and a killed run
// resumed from it by any program that builds the same configuration.
//
//   auto data = nmhash::train::prepare(config.data);
//   nmhash::train::run r(config, data, "results/run");  // resumes its checkpoint
//   r.train();
//   r.write_results(r.evaluate());                       // model, codes, labels, summary
//
// The checkpoint (DIR/checkpoint.safetensors) holds the trainer's state
// (network, optimizer, memory bank, NMLayer) and metadata: `nmhash_run`,
// the configuration's JSON (to_json in config.hpp), which a resumed run
// must equal; `history`, every epoch's record; `train_seconds`; and
// `notes`, a JSON value the program keeps with the run (its evaluations).
// A fixed-length run's epoch count is not part of the configuration: a
// finished run continues with more epochs.
//
// Data parallel (ranks > 1, run_ranks): every rank builds the run and calls
// every function; rank 0 reads the checkpoint and hands it to the others,
// and writes checkpoints and results. Needs nmhash::training and
// nmhash::image.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/codes/spread.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/io/read_file.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/optim/adam.hpp"
#include "nmhash/optim/rmsprop.hpp"
#include "nmhash/optim/sgd.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/train/config.hpp"
#include "nmhash/train/device_step.hpp"
#include "nmhash/train/setup.hpp"

namespace nmhash::train {

// The processes of a data-parallel run (one process by default).
struct run_ranks {
  int rank = 0, ranks = 1, local_rank = 0;  // local_rank: among the ranks of its node (the GPU it takes)
  std::function<void(std::string&)> share;  // rank 0's string on every rank (ranks > 1)
  // The bytes of a file read by rank 0, on every rank (ranks > 1; its
  // errors every rank's).
  std::function<std::vector<unsigned char>(const std::string&)> read_on_root;
  hashing::data_parallel<float> parallel;   // the trainer's collectives (ranks > 1)

  bool root() const { return rank == 0; }
  // Whether `path` exists, as rank 0 sees it.
  bool exists(const std::string& path) const {
    std::string s = root() && std::filesystem::exists(path) ? "1" : "0";
    if (ranks > 1) share(s);
    return s == "1";
  }
  std::vector<unsigned char> read(const std::string& path) const {
    return ranks > 1 ? read_on_root(path) : io::read_file(path);
  }
};

// What one epoch of the run measured, and where the run stands.
struct epoch_report {
  hashing::epoch_record record;
  std::size_t epochs_done = 0, epochs = 0;  // of the plan
  std::size_t nodes = 0;                    // code length after the epoch
  double train_seconds = 0;                 // every epoch's, resumed ones included
};

// A run's evaluation of its query codes against its database codes.
struct run_evaluation {
  packed_codes query, database;
  labels query_labels, database_labels;
  evaluation metrics;
  code_spread_result spread;
  double seconds = 0;
};

namespace detail {

// The first field where two JSON values differ ("" when equal).
inline std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& at = "") {
  if (a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items())
      if (b.contains(k)) {
        const std::string d = first_difference(v, b[k], at + k + ".");
        if (!d.empty()) return d;
      }
    for (const auto& [k, v] : a.items())
      if (!b.contains(k)) return at + k + " (not set here)";
    for (const auto& [k, v] : b.items())
      if (!a.contains(k)) return at + k + " (not in the checkpoint)";
    return "";
  }
  if (a == b) return "";
  std::string name = at.empty() ? "value" : at.substr(0, at.size() - 1);
  return name + " = " + a.dump() + " in the checkpoint, " + b.dump() + " here";
}

template <class Opt>
struct engine {
  Opt opt;
  hashing::progressive_trainer<float, Opt> tr;
  template <class... A>
  engine(Opt o, const hashing::progressive_schedule& s, hashing::reduction m, nn::sequential<float>& net, A&&... a)
      : opt(std::move(o)), tr(s, m, net, opt, std::forward<A>(a)...) {}
};

inline void write_labels_npy(io::atomic_file& f, const labels& l) {
  if (l.is_multi()) {
    const auto m = l.multi_hot_matrix();
    io::write_npy(f, m.data(), {l.size(), l.num_labels()});
  } else {
    io::write_npy(f, l.ids(), {l.size()});
  }
}

}  // namespace detail

// The configuration's JSON as checkpoints carry it (to_json with what
// setup resolved; a fixed-length run's epoch count left out).
inline nlohmann::json run_identity(const run_config& c, const prepared_data& d) {
  const auto& train = c.progressive() ? d.split.train_nm : d.split.train;
  nlohmann::json j = to_json(c, d.arch.layers, d.arch.input_str(), d.transform, train.size());
  if (!c.progressive()) j["schedule"].erase("warmup_epochs");
  return j;
}

class run {
  using adam_engine = std::unique_ptr<detail::engine<optim::adam<float>>>;
  using sgd_engine = std::unique_ptr<detail::engine<optim::sgd<float>>>;
  using rmsprop_engine = std::unique_ptr<detail::engine<optim::rmsprop<float>>>;
  std::variant<adam_engine, sgd_engine, rmsprop_engine> engine_;

  // f(trainer), with the trainer of this run's optimizer.
  template <class F>
  decltype(auto) with(F&& f) {
    return std::visit([&](auto& e) -> decltype(auto) { return f(e->tr); }, engine_);
  }

 public:
  // After every batch: the epoch's record so far, images done, images.
  std::function<void(const hashing::epoch_record&, std::size_t, std::size_t)> on_batch;
  // After every epoch, once its checkpoint is written.
  std::function<void(const epoch_report&)> on_epoch;
  // After an epoch that ends the warm-up or a stage, before its
  // checkpoint (notes() written here are in it): epochs done, and the
  // seconds of that epoch (not yet in train_seconds()).
  std::function<void(std::size_t epochs_done, double epoch_seconds)> on_stage;

  // Builds the network of c on d (which must outlive the run; seeded,
  // --init-from loaded), and, when
  // c.resume and DIR/checkpoint.safetensors exist, restores it (refused
  // when it belongs to another configuration). Creates DIR and holds it
  // (io::directory_lock) for as long as the run lives.
  run(run_config c, const prepared_data& d, std::string dir, run_ranks ranks = {})
      : c_(std::move(c)), d_(d), dir_(std::move(dir)), rk_(std::move(ranks)) {
    const bool progressive = c_.progressive();
    require(!progressive || c_.device == device_kind::cpu, "--device cuda: progressive runs train on the CPU only");
    require(c_.loss != method::classify || !progressive,
            "--method classify pretrains a backbone at a fixed width: no progressive reduction");
    require(c_.loss != method::classify || c_.device == device_kind::cpu, "--method classify trains on the CPU only");
    require(!progressive || !d_.split.validation.empty(), c_.data.dataset,
            ": a progressive run scores bits on the split's validation set V, and it is empty");
    train_ = progressive ? d_.split.train_nm : d_.split.train;
    require(!train_.empty() && !d_.split.query.empty() && !d_.split.database.empty(), c_.data.dataset, ": ",
            train_.size(), " training images, ", d_.split.query.size(), " queries, ", d_.split.database.size(),
            " database images (none may be empty)");
    if (c_.loss == method::classify) {
      const std::size_t classes = d_.split.pool->num_classes();
      require(c_.bits() == classes, "--method classify: --bits is ", c_.bits(), ", the data set has ", classes,
              d_.all_labels().is_multi() ? " labels" : " classes", " (one output per class)");
    }
    c_.schedule.validate();
    identity_ = run_identity(c_, d_);
    if (rk_.root()) {
      std::filesystem::create_directories(dir_);
      lock_ = std::make_unique<io::directory_lock>(dir_);
    }
    tanh_ = build_network(net_, c_, d_.arch);
    for (std::size_t i = 0; rk_.ranks > 1 && i < net_.size(); ++i)
      require(net_.at(i).buffers().empty(), "layer ", i, " (", net_.at(i).name(), ") keeps batch statistics, which ",
              "would differ between the ", rk_.ranks, " ranks of a data-parallel run: train this network in one process");
    if (c_.init == weight_init::pytorch) net_.set_init(nn::init_scheme::pytorch_default);
    net_.initialize(c_.seed);
    if (!c_.init_from.empty())
      init_report_ = load_backbone(net_, d_.arch, io::load_safetensors(c_.init_from), c_.init_from);
    make_engine();
    with([&](auto& tr) {
      if (rk_.ranks > 1) tr.set_data_parallel(rk_.parallel);
    });
    if (c_.resume && rk_.exists(checkpoint_path())) restore();
    resumed_ = epochs_done();
    if (c_.device == device_kind::cuda) use_device();
  }

  run(const run&) = delete;
  run& operator=(const run&) = delete;

  const run_config& config() const { return c_; }
  const prepared_data& data() const { return d_; }
  const std::string& directory() const { return dir_; }
  std::string checkpoint_path() const { return dir_ + "/checkpoint.safetensors"; }
  // The configuration's JSON, as checkpoints carry it.
  const nlohmann::json& identity() const { return identity_; }
  const run_ranks& ranks() const { return rk_; }
  // The training images (T, or T' of a progressive run).
  const std::vector<std::size_t>& train_ids() const { return train_; }
  // The tensors --init-from loaded and skipped (empty without it).
  const nn::load_report& init_report() const { return init_report_; }
  // "cpu", or the device's name.
  std::string device_name() const { return dev_ ? "cuda (" + dev_->device() + ")" : "cpu"; }

  nn::sequential<float>& network() { return net_; }
  const std::vector<hashing::planned_epoch>& plan() { return with([](auto& tr) -> const auto& { return tr.plan(); }); }
  std::size_t epochs_done() { return with([](auto& tr) { return tr.epochs_done(); }); }
  // The epochs the checkpoint held when the run was built (0: a new run).
  std::size_t resumed_epochs() const { return resumed_; }
  std::size_t nodes() { return with([](auto& tr) { return tr.nm().nodes(); }); }
  const hashing::neuron_partition& grouping() {
    return with([](auto& tr) -> const hashing::neuron_partition& { return tr.nm().partition(); });
  }
  // Every epoch's record as JSON, resumed ones included.
  const nlohmann::json& history() const { return history_; }
  double train_seconds() const { return train_seconds_; }
  // The program's own record of the run, kept in every checkpoint.
  nlohmann::json& notes() { return notes_; }

  // Trains the rest of the plan, with a checkpoint after every epoch.
  void train() {
    const std::size_t batch = c_.schedule.batch, per_epoch = steps_per_epoch(train_.size(), batch);
    // HashNet's continuation: beta follows the iteration count of the whole run.
    if (tanh_) tanh_->set_beta(nn::hashnet_beta(epochs_done() * per_epoch));
    with([&](auto& tr) {
      tr.on_batch = [&](const hashing::epoch_record& e, std::size_t done, std::size_t total) {
        if (tanh_) tanh_->set_beta(nn::hashnet_beta((e.epoch - 1) * per_epoch + (done + batch - 1) / batch));
        if (on_batch) on_batch(e, done, total);
      };
      tr.on_report = [&](const hashing::planned_epoch&, std::size_t done) {
        if (on_stage) on_stage(done, tr.history().back().seconds);
      };
      tr.on_epoch = [&](std::size_t done) { finish_epoch(tr, done); };
      tr.run();
    });
  }

  // Evaluation-mode codes of the images ids (collective when data parallel).
  packed_codes encode(const std::vector<std::size_t>& ids) {
    return with([&](auto& tr) { return tr.encode(ids); });
  }

  // The query codes against the database codes in both tie conventions,
  // with precision at 100 and 1000 and MAP at each of map_at; every rank
  // evaluates the whole database.
  run_evaluation evaluate(const std::vector<std::size_t>& map_at = {},
                          const std::vector<std::size_t>& precision_at = {100, 1000}) {
    const auto t0 = std::chrono::steady_clock::now();
    run_evaluation r;
    r.query = encode(d_.split.query);
    r.database = encode(d_.split.database);
    r.query_labels = d_.all_labels().subset(d_.split.query);
    r.database_labels = d_.all_labels().subset(d_.split.database);
    evaluation_options eo;
    eo.precision_at = precision_at;
    for (std::size_t k : map_at) eo.map_at.push_back(std::min(k, r.database.size()));
    r.metrics = nmhash::evaluate(r.query, r.database, r.query_labels, r.database_labels, eo);
    r.spread = code_spread(r.database);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

  // A classify run's top-1 accuracy on the queries (single-label data).
  double query_accuracy() {
    require(c_.loss == method::classify && !d_.all_labels().is_multi(),
            "query_accuracy: a classify run on single-label data has one");
    const auto& query = d_.split.query;
    const std::size_t batch = c_.schedule.batch, width = c_.schedule.b_in;
    std::size_t right = 0;
    tensor<float> x;
    for (std::size_t b = 0; b < query.size(); b += batch) {
      const std::size_t n = std::min(batch, query.size() - b);
      d_.loader->load(query, b, n, x, false, c_.seed, 0);
      const auto& y = net_.forward(x, false);
      for (std::size_t i = 0; i < n; ++i) {
        const float* row = y.data() + i * width;
        const auto top = static_cast<std::int32_t>(std::max_element(row, row + width) - row);
        right += top == d_.all_labels().ids()[query[b + i]];
      }
    }
    return static_cast<double>(right) / static_cast<double>(query.size());
  }

  // The model file (architecture, weights, grouping, transform: what
  // hashing::encoder loads) into f; the caller commits. Runs with a head
  // beyond the hashing layer (fc_from) have no model file.
  void write_model(io::atomic_file& f, const std::map<std::string, std::string>& extra = {}) {
    require(!c_.head.fc_from, f.path(), ": a run with a linear layer after the hashing layer has no model file");
    hashing::model_description md;
    md.arch = d_.arch;
    md.b_in = c_.schedule.b_in;
    md.transform = d_.transform;
    md.tie = c_.schedule.tie;
    std::map<std::string, std::string> meta{{"dataset", c_.data.dataset},
                                            {"loss", to_string(c_.loss)},
                                            {"seed", std::to_string(c_.seed)},
                                            {"epochs", std::to_string(epochs_done())}};
    for (const auto& [k, v] : extra) meta[k] = v;
    hashing::write_model(f, net_, grouping(), md, meta);
  }

  // Rank 0 writes the model file to `path` (write_model), atomically.
  void save_model(const std::string& path, const std::map<std::string, std::string>& extra = {}) {
    if (!rk_.root()) return;
    io::atomic_file f(path);
    write_model(f, extra);
    f.commit();
  }

  // Rank 0 writes, as one set (all or none): DIR/model.safetensors, the
  // codes and labels of the evaluation (query_codes.npy, db_codes.npy,
  // query_labels.npy, db_labels.npy) and DIR/summary.json (`summary`).
  void write_results(const run_evaluation& e, const nlohmann::json& summary) {
    if (!rk_.root()) return;
    io::atomic_group outputs;
    write_model(outputs.add(dir_ + "/model.safetensors"));
    io::write_codes_npy(outputs.add(dir_ + "/query_codes.npy"), e.query);
    io::write_codes_npy(outputs.add(dir_ + "/db_codes.npy"), e.database);
    detail::write_labels_npy(outputs.add(dir_ + "/query_labels.npy"), e.query_labels);
    detail::write_labels_npy(outputs.add(dir_ + "/db_labels.npy"), e.database_labels);
    const std::string text = summary.dump(2) + "\n";
    outputs.add(dir_ + "/summary.json").write(text.data(), text.size());
    outputs.commit();
  }

 private:

  void make_engine() {
    const auto& s = c_.schedule;
    const optim::group_table groups{{}, {s.backbone_lr, s.weight_decay}};
    const auto& labels = d_.all_labels();
    const auto& val = d_.split.validation;
    const auto loader = d_.loader;
    const std::uint64_t seed = c_.seed;
    hashing::image_fn<float> images = [loader, seed](const std::vector<std::size_t>& ids, std::size_t first,
                                                     std::size_t n, tensor<float>& x, const hashing::batch_use& use) {
      loader->load(ids, first, n, x, use.training, seed, use.epoch);
    };
    const auto make = [&](auto opt) {
      using Opt = decltype(opt);
      return std::make_unique<detail::engine<Opt>>(std::move(opt), s, c_.reduction, net_, loss_of<float>(c_.loss, c_.loss_settings),
                                                   images, train_, labels.subset(train_), val, labels.subset(val), seed);
    };
    switch (s.optimizer) {
      case optim::optimizer_kind::adam: engine_ = make(optim::adam<float>(groups)); break;
      case optim::optimizer_kind::sgd: engine_ = make(optim::sgd<float>(s.momentum, groups)); break;
      case optim::optimizer_kind::rmsprop: engine_ = make(optim::rmsprop<float>(groups)); break;
    }
  }

  void restore() {
    const std::string path = checkpoint_path();
    const std::vector<unsigned char> bytes = rk_.read(path);
    const auto ck = io::parse_safetensors(bytes.data(), bytes.size(), path);
    const auto json_field = [&](const char* key) {
      try {
        return nlohmann::json::parse(ck.meta(key, path));
      } catch (const nlohmann::json::exception& e) {
        nmhash::detail::fail(path, ": metadata field '", key, "' is not JSON: ", e.what());
      }
    };
    const nlohmann::json theirs = json_field("nmhash_run");
    const std::string diff = detail::first_difference(theirs, identity_);
    require(diff.empty(), path, ": checkpoint of another run: ", diff, " (use another output directory or --no-resume)");
    const std::uint64_t done = ck.meta_u64("epochs_done", path);
    require(done <= plan().size(), path, ": checkpoint holds ", done, " epochs of training, this run has ", plan().size(),
            " (continue with more epochs, or use another output directory or --no-resume)");
    with([&](auto& tr) { tr.load_state(ck, path); });
    history_ = json_field("history");
    notes_ = json_field("notes");
    const nlohmann::json seconds = json_field("train_seconds");
    require(history_.is_array() && history_.size() == epochs_done(), path, ": metadata field 'history' holds ",
            history_.is_array() ? history_.size() : 0, " epochs, epochs_done is ", epochs_done());
    require(seconds.is_number(), path, ": metadata field 'train_seconds' is not a number");
    train_seconds_ = seconds.get<double>();
  }

  void use_device() {
    device_step_settings ds;
    ds.loss = to_string(c_.loss);
    ds.loss_settings = c_.loss_settings;
    ds.optimizer = c_.schedule.optimizer;
    ds.momentum = c_.schedule.momentum;
    ds.groups = {{}, {c_.schedule.backbone_lr, c_.schedule.weight_decay}};
    device_ranks dr{rk_.rank, rk_.ranks, rk_.local_rank, rk_.share};
    std::visit(
        [&](auto& e) {
          using Opt = std::decay_t<decltype(e->opt)>;
          std::size_t steps = 0;
          if constexpr (std::is_same_v<Opt, optim::adam<float>>) steps = e->opt.steps();
          dev_ = make_device_step(net_, e->tr.bank(), ds, e->opt.state(), steps, dr);
          hashing::external_step<float> ext;
          auto* opt = &e->opt;
          ext.step = [this](const tensor<float>& x, const std::vector<std::size_t>& idx) { return dev_->step(x, idx); };
          ext.infer = [this](const tensor<float>& x, tensor<float>& y) { dev_->infer(x, y); };
          ext.sync = [this, opt](loss::memory_bank<float>& bank) {
            std::size_t s = 0;
            dev_->download(bank, opt->state(), s);
            if constexpr (std::is_same_v<Opt, optim::adam<float>>) opt->set_steps(s);
          };
          e->tr.set_external_step(std::move(ext));
        },
        engine_);
  }

  template <class Trainer>
  void finish_epoch(Trainer& tr, std::size_t done) {
    const auto& e = tr.history().back();
    train_seconds_ += e.seconds;
    history_.push_back({{"epoch", e.epoch},
                        {"phase", to_string(e.phase)},
                        {"stage", e.stage},
                        {"nodes", e.nodes},
                        {"loss", e.loss},
                        {"frozen_loss", e.frozen_loss},
                        {"active_loss", e.active_loss},
                        {"batch_map", e.batch_map},
                        {"seconds", e.seconds},
                        {"scoring_seconds", e.scoring_seconds}});
    io::tensor_map tensors;
    std::map<std::string, std::string> meta{{"nmhash_run", identity_.dump()},
                                            {"history", history_.dump()},
                                            {"notes", notes_.dump()},
                                            {"train_seconds", nlohmann::json(train_seconds_).dump()}};
    tr.save_state(tensors, meta);
    if (rk_.root()) io::save_safetensors(checkpoint_path(), tensors, meta);
    if (on_epoch) on_epoch({e, done, tr.plan().size(), tr.nm().nodes(), train_seconds_});
  }

  run_config c_;
  const prepared_data& d_;
  std::string dir_;
  run_ranks rk_;
  nlohmann::json identity_, history_ = nlohmann::json::array(), notes_ = nlohmann::json::object();
  double train_seconds_ = 0;
  std::size_t resumed_ = 0;
  std::vector<std::size_t> train_;
  std::unique_ptr<io::directory_lock> lock_;
  nn::sequential<float> net_;
  nn::scaled_tanh<float>* tanh_ = nullptr;
  nn::load_report init_report_;
  std::unique_ptr<device_step> dev_;
};

}  // namespace nmhash::train
