// The Neurons Merging Layer (Fu et al., IJCAI 2019), attached after the
// hashing layer: B_in neurons in, one output per node of a
// neuron_partition, and in the active phase a learnable symmetric adjacency
// A over the nodes (all zeros at start).
//
// Forward, training (frozen phase, Eq. 5): every merged node outputs one of
// its children, drawn uniformly for every sample of the batch from the
// layer's generator (reseed() makes the draws a function of the caller's
// seed, epoch and batch). Backward: the drawn child receives the hashing
// loss gradient of its node; every other child i of the node receives the
// gradient of the frozen loss
//   L_frozen = (w / B) sum_samples sum_{i != drawn} (v_i - sgn(v_drawn))^2,
// B the batch size, w the frozen weight. Singleton nodes are plain wires.
//
// Forward, evaluation (section 3.5): a merged node outputs the majority
// vote of its children's signs, as (#plus - #minus) / size, and on a tie
// (even size) +-0.5 / size with the sign of its first child (the lowest
// neuron index; set_tie(vote_tie::summed_output): the sign of the summed
// children's outputs), so codes stay binary; sgn(0) = +1 throughout. Packed,
// the first-child rule is exactly merge_majority() of the B_in-bit codes.
//
// The active phase (active_phase.hpp) scores the nodes on the batch's
// evaluation-mode codes and steps A; truncate() turns the largest entries
// of A into merges and resets A for the next stage.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/codes/pack.hpp"
#include "nmhash/hashing/active_phase.hpp"
#include "nmhash/hashing/partition.hpp"
#include "nmhash/nn/layer.hpp"
#include "nmhash/retrieval/loo_map.hpp"

namespace nmhash::hashing {

// What one active-phase step saw and did.
struct active_step_result {
  std::vector<double> scores;  // p_k, Eq. (1)
  double map = 0;              // MAP with all K bits, same queries and gallery
  double loss = 0;             // Eq. (3) before the step
};

template <class T>
class nm_layer : public nn::layer<T> {
 public:
  explicit nm_layer(neuron_partition partition, double frozen_weight = 0.25, std::uint64_t seed = 0)
      : partition_(std::move(partition)), frozen_weight_(frozen_weight), gen_(seed) {
    require(partition_.inputs() >= 1, "nm_layer: empty partition");
    require(frozen_weight >= 0, "nm_layer: frozen weight ", frozen_weight, " is negative");
    reset_adjacency();
  }
  // The identity over `inputs` neurons (a plain wire until the first merge).
  explicit nm_layer(std::size_t inputs, double frozen_weight = 0.25, std::uint64_t seed = 0)
      : nm_layer(neuron_partition(inputs), frozen_weight, seed) {}

  std::string name() const override {
    return "nm_layer(" + std::to_string(inputs()) + " -> " + std::to_string(nodes()) + ")";
  }
  std::size_t inputs() const { return partition_.inputs(); }
  std::size_t nodes() const { return partition_.nodes(); }
  const neuron_partition& partition() const { return partition_; }
  double frozen_weight() const { return frozen_weight_; }
  vote_tie tie() const { return tie_; }
  void set_tie(vote_tie t) { tie_ = t; }

  // Replaces the grouping (and resets A).
  void set_partition(neuron_partition p) {
    require(p.inputs() == inputs(), "nm_layer: partition over ", p.inputs(), " neurons, the layer has ", inputs());
    partition_ = std::move(p);
    reset_adjacency();
  }

  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 2 && in[1] == inputs(), name(), ": input ", in.str(), " is not (B, ", inputs(), ")");
    return shape4{in[0], nodes()};
  }

  void reseed(std::uint64_t seed) { gen_.seed(seed); }

  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    const shape4 out = output_shape(x.shape());
    const std::size_t rows = out[0], k = nodes(), n_in = inputs();
    y.resize(out);
    training_ = training;
    if (training) {
      x_.resize(x.shape());
      std::copy(x.data(), x.data() + x.size(), x_.data());
      chosen_.assign(rows * k, 0);
    }
    frozen_loss_ = 0;
    for (std::size_t b = 0; b < rows; ++b) {
      const T* v = x.data() + b * n_in;
      for (std::size_t g = 0; g < k; ++g) {
        const auto& ch = partition_.children(g);
        T out_v;
        if (ch.size() == 1) {
          out_v = v[ch[0]];
          if (training) chosen_[b * k + g] = ch[0];
        } else if (training) {
          std::uniform_int_distribution<std::size_t> pick(0, ch.size() - 1);
          const std::size_t c = ch[pick(gen_)];
          chosen_[b * k + g] = c;
          out_v = v[c];
          const double s = v[c] >= T(0) ? 1.0 : -1.0;
          for (std::size_t i : ch)
            if (i != c) frozen_loss_ += (v[i] - s) * (v[i] - s);
        } else {
          out_v = node_vote(v, ch, tie_);
        }
        y[b * k + g] = out_v;
      }
    }
    if (rows) frozen_loss_ *= frozen_weight_ / static_cast<double>(rows);
  }

  // dy: gradient of the hashing loss with respect to the node outputs.
  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(training_, name(), ": backward() needs a forward pass in training mode");
    const std::size_t k = nodes(), n_in = inputs();
    const std::size_t rows = x_.size() / n_in;
    require(dy.shape().rank() == 2 && dy.shape()[0] == rows && dy.shape()[1] == k, name(), ": output gradient ",
            dy.shape().str(), " does not match the forward output (", rows, ", ", k, ")");
    dx.resize(x_.shape());
    std::fill(dx.data(), dx.data() + dx.size(), T(0));
    const double coef = rows ? 2.0 * frozen_weight_ / static_cast<double>(rows) : 0.0;
    for (std::size_t b = 0; b < rows; ++b) {
      const T* v = x_.data() + b * n_in;
      T* d = dx.data() + b * n_in;
      for (std::size_t g = 0; g < k; ++g) {
        const std::size_t c = chosen_[b * k + g];
        d[c] = dy[b * k + g];
        const auto& ch = partition_.children(g);
        if (ch.size() == 1) continue;
        const double s = v[c] >= T(0) ? 1.0 : -1.0;
        for (std::size_t i : ch)
          if (i != c) d[i] = static_cast<T>(coef * (v[i] - s));
      }
    }
  }

  // The frozen loss of the last training forward pass.
  double frozen_loss() const { return frozen_loss_; }

  // Evaluation-mode codes (majority vote) of B_in-wide hashing outputs.
  packed_codes encode(const tensor<T>& x) {
    tensor<T> y;
    const bool was = training_;
    const double frozen = frozen_loss_;
    forward(x, y, false);
    training_ = was;
    frozen_loss_ = frozen;
    return pack_signs(y.data(), y.shape()[0], nodes());
  }

  // The adjacency, K x K row-major, symmetric, zero diagonal.
  const std::vector<double>& adjacency() const { return a_; }
  void set_adjacency(std::vector<double> a) {
    require(a.size() == nodes() * nodes(), name(), ": adjacency of ", a.size(), " entries, expected ",
            nodes() * nodes());
    a_ = std::move(a);
  }
  void reset_adjacency() { a_.assign(nodes() * nodes(), 0.0); }

  // One active-phase step: scores every node by the tie-aware leave-one-
  // bit-out MAP with `queries` (evaluation-mode codes of the validation
  // set) against `gallery` (those of the batch), then descends A.
  active_step_result active_step(const packed_codes& queries, const labels& query_labels,
                                 const packed_codes& gallery, const labels& gallery_labels, double lr,
                                 active_gradient rule, threads t = {}) {
    require(nodes() >= 2, name(), ": the active phase needs at least 2 nodes");
    require(gallery.bits() == nodes() && queries.bits() == nodes(), name(), ": codes of ", gallery.bits(),
            " and ", queries.bits(), " bits, the layer has ", nodes(), " nodes");
    const auto loo = leave_one_bit_out_map(queries, gallery, query_labels, gallery_labels, tie_rule::aware, t);
    active_step_result r;
    r.scores = loo.without_bit;
    r.map = loo.full;
    r.loss = hashing::active_step(a_, r.scores, lr, rule);
    return r;
  }

  // Merges the pairs chosen by truncate_adjacency(A, K, merges, min_nodes,
  // rule) and resets A. Returns the pairs (node indices before the merge).
  std::vector<std::pair<std::size_t, std::size_t>> truncate(std::size_t merges, std::size_t min_nodes,
                                                            truncation_rule rule = truncation_rule::top_m) {
    auto pairs = truncate_adjacency(a_, nodes(), merges, min_nodes, rule);
    set_partition(partition_.merged(pairs));
    return pairs;
  }

 private:
  neuron_partition partition_;
  double frozen_weight_;
  vote_tie tie_ = vote_tie::first_child;
  std::mt19937_64 gen_;
  std::vector<double> a_;
  tensor<T> x_;
  std::vector<std::size_t> chosen_;
  double frozen_loss_ = 0;
  bool training_ = false;
};

}  // namespace nmhash::hashing
