// Progressive training of a hashing network with an NMLayer (section 3.6):
// warm-up epochs at B_in, then per stage N0 active epochs (the backbone
// trains on the hashing loss while A learns from per-batch leave-one-bit-
// out MAP scores), a truncation to the stage's node count, and N1 frozen
// epochs. A fixed-length run is the same loop with no stage.
//
// Reductions: `merge` is the NMLayer; `random` truncates a random symmetric
// A instead of a learned one (no scoring); `select` scores like the active
// phase but drops the least important nodes (highest mean leave-one-bit-
// out MAP) instead of merging them.
//
// The hashing loss works on the node outputs against a memory bank of the
// latest node outputs of every training image. When a truncation changes
// the nodes, each new node's bank column becomes the mean of the columns of
// the old nodes it is made of (dropped nodes' columns go away), or, with
// bank_remap::recompute, the mean of its children's outputs over a fresh
// encoding of every training image. With reset_optimizer the optimizer's
// state (moments, step count) starts over at every truncation.
//
// A fixed-length run may hand its whole training step to a device
// (external_step: nmhash_train --device cuda), which gives its parameters,
// bank and optimizer state back before every report and checkpoint.
//
// Everything the loop needs to continue is in save_state() (parameters,
// optimizer, bank, grouping, A, select scores, epochs done); the child
// draws and batch orders are functions of (seed, epoch, batch), so a run
// restored from a checkpoint continues exactly as it would have.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "nmhash/data/batches.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/nm_layer.hpp"
#include "nmhash/hashing/schedule.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/nn/sequential.hpp"
#include "nmhash/nn/serialize.hpp"
#include "nmhash/optim/adam.hpp"

namespace nmhash::hashing {

enum class reduction { merge, random, select };

inline const char* to_string(reduction r) {
  return r == reduction::merge ? "merge" : r == reduction::random ? "random" : "select";
}

// Hashing loss on node outputs u (B x K) of training images idx against
// the bank; returns the loss and writes dL/du.
template <class T>
using hash_loss_fn = std::function<double(const tensor<T>& u, const std::vector<std::size_t>& idx,
                                          const loss::memory_bank<T>& bank, tensor<T>& du)>;
// Where a batch of images is used: training (augmented, with the epoch) or
// encoding.
struct batch_use {
  bool training = false;
  std::size_t epoch = 0;
};
// Fills x with the images ids[first, first + n) (ids are the caller's
// image identifiers, e.g. pool indices).
template <class T>
using image_fn = std::function<void(const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, tensor<T>& x,
                                    const batch_use& use)>;

enum class epoch_phase { warmup, active, frozen };
inline const char* to_string(epoch_phase p) {
  return p == epoch_phase::warmup ? "warmup" : p == epoch_phase::active ? "active" : "frozen";
}

// One epoch of the run's plan.
struct planned_epoch {
  epoch_phase phase = epoch_phase::warmup;
  int stage = -1;                 // -1 for warm-up
  std::size_t nodes = 0;          // node count during the epoch
  bool truncate_after = false;    // last active epoch of its stage
  std::size_t nodes_after = 0;    // node count after it
  bool report_after = false;      // end of warm-up or of a stage
};

inline std::vector<planned_epoch> plan_epochs(const progressive_schedule& s) {
  std::vector<planned_epoch> out;
  for (std::size_t e = 0; e < s.warmup_epochs; ++e)
    out.push_back({epoch_phase::warmup, -1, s.b_in, false, s.b_in, e + 1 == s.warmup_epochs});
  std::size_t k = s.b_in;
  const auto targets = stage_targets(s);
  require(targets.empty() || s.active_epochs >= 1, "schedule '", s.name,
          "': N0 must be at least 1 (the truncation closes the active phase)");
  for (std::size_t st = 0; st < targets.size(); ++st) {
    const int si = static_cast<int>(st);
    for (std::size_t e = 0; e < s.active_epochs; ++e)
      out.push_back({epoch_phase::active, si, k, false, k, false});
    planned_epoch& last = out.back();
    last.truncate_after = true;
    last.nodes_after = targets[st];
    k = targets[st];
    for (std::size_t e = 0; e < s.frozen_epochs; ++e)
      out.push_back({epoch_phase::frozen, si, k, false, k, false});
    out.back().report_after = true;
  }
  return out;
}

// What one epoch measured.
struct epoch_record {
  std::size_t epoch = 0;  // 1-based
  epoch_phase phase = epoch_phase::warmup;
  int stage = -1;
  std::size_t nodes = 0;
  double loss = 0, frozen_loss = 0, active_loss = 0, batch_map = 0;
  double seconds = 0, scoring_seconds = 0;
};

// A device that runs the training step of a fixed-length run. With data
// parallelism (below) each rank's device takes this rank's rows of the
// batch, gathers the outputs and sums the gradients itself (over NCCL in
// nmhash_train); the trainer gathers the outputs of infer() with
// gather_rows.
template <class T>
struct external_step {
  // Forward, bank update, loss, backward and optimizer step of the batch
  // of training images idx (bank positions) whose images are x; returns
  // the loss. With data parallelism x holds this rank's rows
  // [split_begin(idx.size(), ranks, rank), ...) only (and is not read
  // where there are none); idx is the whole batch.
  std::function<double(const tensor<T>& x, const std::vector<std::size_t>& idx)> step;
  // Network outputs of x, into host memory.
  std::function<void(const tensor<T>& x, tensor<T>& y)> infer;
  // Copies parameters, bank rows and optimizer state back to the host.
  std::function<void(loss::memory_bank<T>& bank)> sync;
};

// Data parallelism over `ranks` processes (nmhash::mpi::data_parallel in
// <nmhash/mpi/training.hpp> fills this in for MPI). Every batch, and every
// encoding pass, is split into consecutive rows (split_begin): each rank
// runs the network forward and backward on its rows only. The network
// outputs of the whole batch are gathered on every rank, so the NMLayer,
// the memory bank, the loss, the active-phase scores and the truncations
// are computed on every rank from the same numbers, as in one process; the
// parameter gradients are summed over the ranks before the optimizer step,
// which every rank then takes alike.
template <class T>
struct data_parallel {
  int rank = 0, ranks = 1;
  // full (rows x width) on every rank from the rows each rank holds
  // (local: its rows [split_begin(rows, ranks, rank), ...), in rank order).
  std::function<void(const T* local, T* full, std::size_t rows, std::size_t width)> gather_rows;
  // Element-wise sum of buf over the ranks, on every rank.
  std::function<void(T* buf, std::size_t n)> sum;
};

template <class T, class Optimizer>
class progressive_trainer {
 public:
  // Called after a report epoch (end of warm-up or of a stage), with the
  // trainer in its state after that epoch.
  std::function<void(const planned_epoch&, std::size_t epochs_done)> on_report;
  // Called after every epoch, after on_report: the place to checkpoint.
  std::function<void(std::size_t epochs_done)> on_epoch;
  // Called after every batch: (epoch record so far, images done, images).
  std::function<void(const epoch_record&, std::size_t, std::size_t)> on_batch;

  progressive_trainer(progressive_schedule s, reduction mode, nn::sequential<T>& net, Optimizer& opt,
                      hash_loss_fn<T> loss, image_fn<T> images, std::vector<std::size_t> train,
                      nmhash::labels train_labels, std::vector<std::size_t> val, nmhash::labels val_labels,
                      std::uint64_t seed)
      : s_(std::move(s)),
        mode_(mode),
        net_(net),
        opt_(opt),
        loss_(std::move(loss)),
        images_(std::move(images)),
        train_(std::move(train)),
        train_labels_(std::move(train_labels)),
        val_(std::move(val)),
        val_labels_(std::move(val_labels)),
        seed_(seed),
        plan_(plan_epochs(s_)),
        nm_(net.output_shape()[1], s_.frozen_weight, seed),
        bank_(train_labels_, net.output_shape()[1]) {
    require(net.output_shape().rank() == 2 && net.output_shape()[1] == s_.b_in, "progressive_trainer: the network outputs ",
            net.output_shape().str(), ", the schedule '", s_.name, "' starts from B_in = ", s_.b_in);
    require(train_.size() == train_labels_.size(), "progressive_trainer: ", train_.size(), " training images but ",
            train_labels_.size(), " labels");
    require(!train_.empty(), "progressive_trainer: no training image");
    const bool scores = mode_ != reduction::random && !stage_targets(s_).empty();
    require(!scores || !val_.empty(), "progressive_trainer: the ", to_string(mode_),
            " reduction scores bits on a validation set, and none was given");
    net_.set_input_gradient(false);  // the input is data
    nm_.set_tie(s_.tie);
  }

  const progressive_schedule& schedule() const { return s_; }
  const std::vector<planned_epoch>& plan() const { return plan_; }
  std::size_t epochs_done() const { return done_; }
  bool finished() const { return done_ == plan_.size(); }
  nm_layer<T>& nm() { return nm_; }
  const loss::memory_bank<T>& bank() const { return bank_; }
  const std::vector<epoch_record>& history() const { return history_; }

  // Hands the training step to a device (fixed-length runs only).
  void set_external_step(external_step<T> d) {
    require(stage_targets(s_).empty(), "progressive_trainer: an external training step takes fixed-length runs only");
    require(d.step && d.infer && d.sync, "progressive_trainer: an external step needs step, infer and sync");
    device_ = std::move(d);
  }

  // Splits batches and encoding over processes (see data_parallel).
  void set_data_parallel(data_parallel<T> d) {
    require(d.ranks >= 1 && d.rank >= 0 && d.rank < d.ranks, "progressive_trainer: rank ", d.rank, " of ", d.ranks);
    require(d.ranks == 1 || (d.gather_rows && d.sum), "progressive_trainer: data parallelism needs gather_rows and sum");
    dp_ = std::move(d);
  }
  const data_parallel<T>& parallelism() const { return dp_; }

  // Trains the remaining epochs of the plan.
  void run() {
    while (done_ < plan_.size()) {
      const planned_epoch& pe = plan_[done_];
      history_.push_back(train_epoch(pe, done_));
      if (device_.sync) device_.sync(bank_);
      if (pe.truncate_after) truncate(pe);
      ++done_;
      if (pe.report_after && on_report) on_report(pe, done_);
      if (on_epoch) on_epoch(done_);
    }
  }

  // Evaluation-mode codes of the given images (through the network and the
  // NMLayer's majority vote).
  // With data parallelism every rank calls it (collective) and receives
  // every code.
  packed_codes encode(const std::vector<std::size_t>& ids, std::size_t chunk = 256) {
    packed_codes codes(ids.size(), nm_.nodes());
    tensor<T> x;
    for (std::size_t b = 0; b < ids.size(); b += chunk) {
      const std::size_t n = std::min(chunk, ids.size() - b);
      if (dp_.ranks > 1) {
        const auto part = nm_.encode(forward_rows(ids, b, n, x));
        std::copy(part.data(), part.data() + n * codes.words_per_code(), codes.row(b));
        continue;
      }
      images_(ids, b, n, x, batch_use{});
      if (device_.infer) device_.infer(x, y_host_);
      const auto part = nm_.encode(device_.infer ? y_host_ : net_.forward(x, false));
      std::copy(part.data(), part.data() + n * codes.words_per_code(), codes.row(b));
    }
    return codes;
  }

  // The run's state, for a checkpoint.
  void save_state(io::tensor_map& tensors, std::map<std::string, std::string>& meta) {
    for (auto& [name, t] : nn::parameter_tensors(net_)) tensors.emplace("net." + name, std::move(t));
    for (auto& [name, buf] : opt_.state())
      if (!buf->empty()) tensors["optimizer." + name] = io::named_tensor::from(buf->data(), {buf->size()});
    if constexpr (std::is_same_v<Optimizer, optim::adam<T>>) meta["optimizer_steps"] = std::to_string(opt_.steps());
    tensors["memory_bank"] = io::named_tensor::from(bank_.rows(), {bank_.size(), bank_.bits()});
    tensors["nm.node_of"] = detail::node_of_tensor(nm_.partition());
    tensors["nm.adjacency"] = io::named_tensor::from(nm_.adjacency().data(), {nm_.nodes(), nm_.nodes()});
    if (!score_sum_.empty()) tensors["nm.score_sum"] = io::named_tensor::from(score_sum_.data(), {score_sum_.size()});
    meta["score_count"] = std::to_string(score_count_);
    meta["epochs_done"] = std::to_string(done_);
    meta["reduction"] = to_string(mode_);
    meta["schedule"] = s_.name;
  }

  // Restores a state written by save_state() (file read from `path`).
  void load_state(const io::safetensors_file& f, const std::string& path) {
    const std::string& reduction = f.meta("reduction", path);
    require(reduction == to_string(mode_), path, ": checkpoint of a ", reduction, " run, this run is ", to_string(mode_));
    const std::uint64_t done = f.meta_u64("epochs_done", path);
    const std::uint64_t score_count = f.meta_u64("score_count", path);
    require(done <= plan_.size(), path, ": checkpoint after epoch ", done, ", the plan has ", plan_.size());
    // The network: names "net.<layer>.<weight|bias>".
    io::safetensors_file inner;
    for (const auto& [name, t] : f.tensors)
      if (name.rfind("net.", 0) == 0) inner.tensors.emplace(name.substr(4), t);
    nn::load_parameters(inner, path, net_);
    for (auto& [name, buf] : opt_.state()) {
      if (!f.tensors.count("optimizer." + name)) continue;
      buf->resize(net_.parameters().size());
      f.at("optimizer." + name, {buf->size()}, path).copy_to(buf->data(), buf->size());
    }
    if constexpr (std::is_same_v<Optimizer, optim::adam<T>>) {
      opt_.set_steps(static_cast<std::size_t>(f.meta_u64("optimizer_steps", path)));
    }
    nm_.set_partition(detail::read_node_of(f, s_.b_in, path));
    const std::size_t k = nm_.nodes();
    const std::size_t expect = done == 0 ? s_.b_in : plan_[done - 1].nodes_after;
    require(k == expect, path, ": checkpoint has ", k, " nodes, the plan has ", expect, " after epoch ", done);
    std::vector<double> a(k * k);
    f.at("nm.adjacency", {k, k}, path).copy_to(a.data(), a.size());
    nm_.set_adjacency(std::move(a));
    bank_ = loss::memory_bank<T>(train_labels_, k);
    f.at("memory_bank", {train_.size(), k}, path).copy_to(bank_.rows(), train_.size() * k);
    score_sum_.clear();
    if (f.tensors.count("nm.score_sum")) {
      score_sum_.resize(k);
      f.at("nm.score_sum", {k}, path).copy_to(score_sum_.data(), k);
    }
    score_count_ = static_cast<std::size_t>(score_count);
    done_ = static_cast<std::size_t>(done);
  }

 private:
  // A distinct stream per (seed, epoch, batch).
  static std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    std::seed_seq seq{static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(a >> 32), static_cast<std::uint32_t>(b),
                      static_cast<std::uint32_t>(c), 0x4e4du};
    std::uint32_t out[2];
    seq.generate(out, out + 2);
    return (static_cast<std::uint64_t>(out[0]) << 32) | out[1];
  }

  epoch_record train_epoch(const planned_epoch& pe, std::size_t epoch) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    epoch_record rec;
    rec.epoch = epoch + 1;
    rec.phase = pe.phase;
    rec.stage = pe.stage;
    rec.nodes = nm_.nodes();
    const bool scoring = pe.phase == epoch_phase::active && mode_ != reduction::random && nm_.nodes() >= 2;
    const auto order = data::epoch_order(train_.size(), seed_, epoch);
    std::vector<std::size_t> ids(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) ids[i] = train_[order[i]];
    std::vector<std::size_t> idx;
    packed_codes val_codes;
    std::size_t batches = 0, scored = 0;
    for (std::size_t b = 0; b < order.size(); b += s_.batch) {
      const std::size_t n = std::min(s_.batch, order.size() - b);
      if (scoring && batches % s_.validation_refresh == 0) {
        const auto v0 = clock::now();
        val_codes = encode(val_);
        rec.scoring_seconds += std::chrono::duration<double>(clock::now() - v0).count();
      }
      if (dp_.ranks == 1) images_(ids, b, n, x_, batch_use{true, epoch});
      idx.assign(order.begin() + static_cast<std::ptrdiff_t>(b), order.begin() + static_cast<std::ptrdiff_t>(b + n));
      if (device_.step) {
        if (dp_.ranks > 1) {
          const std::size_t lo = split_begin(n, dp_.ranks, dp_.rank), hi = split_begin(n, dp_.ranks, dp_.rank + 1);
          if (hi > lo) images_(ids, b + lo, hi - lo, x_, batch_use{true, epoch});
        }
        const double l = device_.step(x_, idx);
        check_finite(l, epoch, batches);
        rec.loss += l;
        ++batches;
        report_batch(rec, batches, t0, b + n, order.size());
        continue;
      }
      nm_.reseed(mix(seed_, epoch, b));
      // Data parallel: this rank's rows [lo, hi) through the network, the
      // batch's outputs gathered on every rank.
      const std::size_t lo = dp_.ranks > 1 ? split_begin(n, dp_.ranks, dp_.rank) : 0;
      const std::size_t hi = dp_.ranks > 1 ? split_begin(n, dp_.ranks, dp_.rank + 1) : n;
      if (dp_.ranks > 1) {
        if (hi > lo) {
          images_(ids, b + lo, hi - lo, x_, batch_use{true, epoch});
          local_ = &net_.forward(x_, true);
        }
        v_all_.resize(shape4{n, s_.b_in});
        dp_.gather_rows(hi > lo ? local_->data() : nullptr, v_all_.data(), n, s_.b_in);
      }
      const tensor<T>& v = dp_.ranks > 1 ? v_all_ : net_.forward(x_, true);
      nm_.forward(v, u_, true);
      bank_.update(u_, idx);
      const double l = loss_(u_, idx, bank_, du_);
      check_finite(l, epoch, batches);  // before any step
      rec.loss += l;
      rec.frozen_loss += nm_.frozen_loss();
      nm_.backward(du_, dv_);
      if (scoring) {
        const auto s0 = clock::now();
        const labels batch_labels = train_labels_.subset(idx);
        const auto codes = nm_.encode(v);
        const auto res = mode_ == reduction::merge
                             ? nm_.active_step(val_codes, val_labels_, codes, batch_labels, s_.nm_lr, s_.gradient)
                             : score_only(val_codes, codes, batch_labels);
        rec.active_loss += res.loss;
        rec.batch_map += res.map;
        ++scored;
        rec.scoring_seconds += std::chrono::duration<double>(clock::now() - s0).count();
      }
      net_.zero_grad();
      if (dp_.ranks == 1) {
        net_.backward(dv_);
      } else {
        if (hi > lo) {
          dv_local_.resize(shape4{hi - lo, s_.b_in});
          std::copy(dv_.data() + lo * s_.b_in, dv_.data() + hi * s_.b_in, dv_local_.data());
          net_.backward(dv_local_);
        }
        dp_.sum(net_.gradients().data(), net_.gradients().size());
      }
      opt_.step(net_.parameters(), net_.gradients(), net_.ranges());
      ++batches;
      report_batch(rec, batches, t0, b + n, order.size());
    }
    rec.loss /= static_cast<double>(batches);
    rec.frozen_loss /= static_cast<double>(batches);
    if (scored) {
      rec.active_loss /= static_cast<double>(scored);
      rec.batch_map /= static_cast<double>(scored);
    }
    rec.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    return rec;
  }

  template <class TimePoint>
  void report_batch(const epoch_record& rec, std::size_t batches, TimePoint t0, std::size_t done, std::size_t total) {
    if (!on_batch) return;
    epoch_record now = rec;
    now.loss /= static_cast<double>(batches);
    now.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    on_batch(now, done, total);
  }

  static void check_finite(double loss, std::size_t epoch, std::size_t batch) {
    require(std::isfinite(loss), "the hashing loss is ", loss, " at epoch ", epoch + 1, ", batch ", batch + 1,
            ": training diverged (lower the learning rate, or use Adam)");
  }

  // Select: accumulates the scores of the current nodes.
  active_step_result score_only(const packed_codes& q, const packed_codes& g, const labels& gl) {
    const auto loo = leave_one_bit_out_map(q, g, val_labels_, gl);
    if (score_sum_.size() != nm_.nodes()) score_sum_.assign(nm_.nodes(), 0.0);
    for (std::size_t k = 0; k < score_sum_.size(); ++k) score_sum_[k] += loo.without_bit[k];
    ++score_count_;
    active_step_result r;
    r.scores = loo.without_bit;
    r.map = loo.full;
    return r;
  }

  void truncate(const planned_epoch& pe) {
    const neuron_partition before = nm_.partition();
    const std::size_t k = before.nodes(), remove = k - pe.nodes_after;
    if (mode_ == reduction::select) {
      // Drop the nodes whose deletion costs least (highest mean score);
      // ties to the higher index.
      std::vector<double> mean(k, 0.0);
      if (score_sum_.size() == k && score_count_)
        for (std::size_t i = 0; i < k; ++i) mean[i] = score_sum_[i] / static_cast<double>(score_count_);
      std::vector<std::size_t> ord(k);
      std::iota(ord.begin(), ord.end(), std::size_t{0});
      std::stable_sort(ord.begin(), ord.end(), [&](std::size_t a, std::size_t b) { return mean[a] > mean[b]; });
      nm_.set_partition(before.without_nodes({ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(remove)}));
      score_sum_.clear();
      score_count_ = 0;
    } else {
      if (mode_ == reduction::random) {
        std::mt19937_64 gen(mix(seed_, 0x72616e64ULL, static_cast<std::uint64_t>(pe.stage)));
        std::uniform_real_distribution<double> u(0.0, 1.0);
        std::vector<double> a(k * k, 0.0);
        for (std::size_t i = 0; i < k; ++i)
          for (std::size_t j = i + 1; j < k; ++j) a[i * k + j] = a[j * k + i] = u(gen);
        nm_.set_adjacency(std::move(a));
      }
      nm_.truncate(remove, pe.nodes_after, s_.truncation);
    }
    if (s_.bank_after_truncation == bank_remap::recompute)
      recompute_bank();
    else
      remap_bank(before);
    if (s_.reset_optimizer) {
      for (auto& [name, buf] : opt_.state()) std::fill(buf->begin(), buf->end(), T(0));
      if constexpr (std::is_same_v<Optimizer, optim::adam<T>>) opt_.set_steps(0);
    }
  }

  void recompute_bank() {
    const std::size_t k = nm_.nodes(), n = train_.size(), b_in = s_.b_in, chunk = 256;
    loss::memory_bank<T> next(train_labels_, k);
    tensor<T> x;
    for (std::size_t b = 0; b < n; b += chunk) {
      const std::size_t c = std::min(chunk, n - b);
      const tensor<T>* vp = nullptr;
      if (dp_.ranks > 1) {
        vp = &forward_rows(train_, b, c, x);
      } else {
        images_(train_, b, c, x, batch_use{});
        vp = &net_.forward(x, false);
      }
      const tensor<T>& v = *vp;
      for (std::size_t r = 0; r < c; ++r)
        for (std::size_t g = 0; g < k; ++g) {
          const auto& ch = nm_.partition().children(g);
          double sum = 0;
          for (std::size_t i : ch) sum += static_cast<double>(v[r * b_in + i]);
          next.rows()[(b + r) * k + g] = static_cast<T>(sum / static_cast<double>(ch.size()));
        }
    }
    bank_ = std::move(next);
  }

  // Data parallel, evaluation mode: this rank's rows of ids[b, b + n)
  // through the network; the outputs of all n, gathered on every rank.
  const tensor<T>& forward_rows(const std::vector<std::size_t>& ids, std::size_t b, std::size_t n, tensor<T>& x) {
    const std::size_t lo = split_begin(n, dp_.ranks, dp_.rank), hi = split_begin(n, dp_.ranks, dp_.rank + 1);
    const T* local = nullptr;
    if (hi > lo) {
      images_(ids, b + lo, hi - lo, x, batch_use{});
      if (device_.infer) {
        device_.infer(x, y_host_);
        local = y_host_.data();
      } else {
        local = net_.forward(x, false).data();
      }
    }
    v_all_.resize(shape4{n, s_.b_in});
    dp_.gather_rows(local, v_all_.data(), n, s_.b_in);
    return v_all_;
  }

  void remap_bank(const neuron_partition& before) {
    const auto old_of = before.node_ids();
    const std::size_t k_old = before.nodes(), k_new = nm_.nodes(), n = bank_.size();
    loss::memory_bank<T> next(train_labels_, k_new);
    for (std::size_t g = 0; g < k_new; ++g) {
      std::vector<std::size_t> olds;
      for (std::size_t c : nm_.partition().children(g))
        if (std::find(olds.begin(), olds.end(), old_of[c]) == olds.end()) olds.push_back(old_of[c]);
      for (std::size_t r = 0; r < n; ++r) {
        double sum = 0;
        for (std::size_t o : olds) sum += bank_.rows()[r * k_old + o];
        next.rows()[r * k_new + g] = static_cast<T>(sum / static_cast<double>(olds.size()));
      }
    }
    bank_ = std::move(next);
  }

  progressive_schedule s_;
  reduction mode_;
  nn::sequential<T>& net_;
  Optimizer& opt_;
  hash_loss_fn<T> loss_;
  image_fn<T> images_;
  std::vector<std::size_t> train_;
  labels train_labels_;
  std::vector<std::size_t> val_;
  labels val_labels_;
  std::uint64_t seed_;
  std::vector<planned_epoch> plan_;
  nm_layer<T> nm_;
  loss::memory_bank<T> bank_;
  std::vector<double> score_sum_;
  std::size_t score_count_ = 0;
  std::size_t done_ = 0;
  std::vector<epoch_record> history_;
  tensor<T> x_, u_, du_, dv_, y_host_, v_all_, dv_local_;
  const tensor<T>* local_ = nullptr;
  external_step<T> device_;
  data_parallel<T> dp_;
};

}  // namespace nmhash::hashing
