// The progressive optimisation schedule of section 3.6: from B_in bits,
// stages of N0 active epochs (A learns), a truncation that merges m nodes,
// and N1 frozen epochs, until the code reaches each reported length in turn.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/hashing/active_phase.hpp"
#include "nmhash/hashing/partition.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::hashing {

// What becomes of the memory bank when a truncation changes the nodes (the
// paper has no bank: this is a choice of the implementation, made by
// measurement in docs/reproduction.md).
enum class bank_remap {
  mean_columns,  // each new node's column is the mean of the columns of the old nodes it is made of
  recompute,     // every training image is re-encoded: a node's entry is the mean of its children's outputs
};
inline const char* to_string(bank_remap b) { return b == bank_remap::mean_columns ? "mean_columns" : "recompute"; }
inline bank_remap parse_bank_remap(const std::string& s) {
  if (s == "mean_columns") return bank_remap::mean_columns;
  require(s == "recompute", "memory-bank rule '", s, "' is not one of mean_columns, recompute");
  return bank_remap::recompute;
}

namespace detail {

// Node count after each truncation from B_in: each removes min(m, K - next
// reported length) nodes, so every reported length is met exactly.
inline std::vector<std::size_t> stage_node_counts(std::size_t b_in, const std::vector<std::size_t>& lengths,
                                                  std::size_t merges) {
  std::vector<std::size_t> out;
  std::size_t k = b_in;
  for (std::size_t l : lengths)
    while (k > l) {
      k -= std::min(merges, k - l);
      out.push_back(k);
    }
  return out;
}

}  // namespace detail

struct progressive_schedule {
  std::string name = "custom";
  std::size_t b_in = 60;                         // neurons of the hashing layer
  std::vector<std::size_t> lengths{48, 32, 24, 12};  // reported code lengths, descending
  std::size_t merges = 4;                        // m: nodes removed per truncation
  std::size_t warmup_epochs = 0;                 // plain training at B_in before the first stage
  std::size_t active_epochs = 5;                 // N0
  std::size_t frozen_epochs = 40;                // N1
  std::size_t batch = 128;
  optim::optimizer_kind optimizer = optim::optimizer_kind::adam;  // of the backbone
  double backbone_lr = 1e-4;
  double weight_decay = 1e-5;
  double momentum = 0.9;
  double nm_lr = 1e-2;                           // learning rate of A
  double eta = 1200;                             // Eq. (7) quantization weight
  double frozen_weight = 0.25;                   // w of the frozen loss (nm_layer.hpp)
  active_gradient gradient = active_gradient::paper_eq4;
  truncation_rule truncation = truncation_rule::top_m;  // which entries of A a truncation merges
  std::size_t validation_refresh = 8;            // batches between re-encodings of V
  vote_tie tie = vote_tie::first_child;          // tie rule of an even node's majority vote
  bank_remap bank_after_truncation = bank_remap::recompute;  // measured: above mean_columns at every length
  bool reset_optimizer = false;                  // clear the optimizer's state at every truncation

  void validate() const {
    require(b_in >= (lengths.empty() ? 1u : 2u), "schedule '", name, "': B_in must be at least ",
            lengths.empty() ? 1 : 2, ", got ", b_in);
    require(merges >= 1, "schedule '", name, "': m must be at least 1");
    require(batch >= 1, "schedule '", name, "': batch must be positive");
    require(validation_refresh >= 1, "schedule '", name, "': validation_refresh must be positive");
    std::size_t prev = b_in;
    for (std::size_t l : lengths) {
      require(l >= 1 && l < prev, "schedule '", name, "': lengths must descend strictly below B_in = ", b_in,
              ", got ", l, " after ", prev);
      prev = l;
    }
    if (truncation == truncation_rule::one_per_node) {
      std::size_t k = b_in;
      for (std::size_t next : detail::stage_node_counts(b_in, lengths, merges)) {
        require(2 * (k - next) <= k, "schedule '", name, "': one_per_node truncation cannot merge ", k - next,
                " disjoint pairs among ", k, " nodes; lower m to at most ", k / 2);
        k = next;
      }
    }
  }
};

// Node count after each stage: each truncation removes min(m, K - next
// reported length) nodes, so every reported length is met exactly.
inline std::vector<std::size_t> stage_targets(const progressive_schedule& s) {
  s.validate();
  return detail::stage_node_counts(s.b_in, s.lengths, s.merges);
}

// Epochs the progressive run has trained when it first reports `length`
// (B_in: the warm-up alone).
inline std::size_t epochs_to_reach(const progressive_schedule& s, std::size_t length) {
  std::size_t e = s.warmup_epochs;
  if (length == s.b_in) return e;
  for (std::size_t k : stage_targets(s)) {
    e += s.active_epochs + s.frozen_epochs;
    if (k == length) return e;
  }
  nmhash::detail::fail("schedule '", s.name, "': length ", length, " is not reached by the schedule");
}

// `paper`: the values of section 4.1 (B_in 60, m 4, N0 5, N1 40, batch 128,
// weight decay 1e-5, 1e-2 for the NMLayer, eta 1200), no warm-up, with one
// change: lenet is trained from scratch here, and SGD at the paper's 1e-4
// diverges on it (NaN in the second epoch), so the backbone uses Adam at
// 1e-4 (docs/reproduction.md has the measurements). `medium`: a 4-epoch
// warm-up, m = 8, N0 = 1 and N1 = 8 (the paper's ratio of frozen to active
// epochs), 67 epochs to 12 bits. `quick`: a few CPU minutes on fmnist-dpsh:
// the warm-up, N0 = N1 = 1 and m = 8, 18 epochs.
inline progressive_schedule preset(const std::string& name) {
  progressive_schedule s;
  s.name = name;
  if (name == "paper") return s;
  if (name == "quick" || name == "medium") {
    s.merges = 8;
    s.warmup_epochs = 4;
    s.active_epochs = 1;
    s.frozen_epochs = name == "quick" ? 1 : 8;
    return s;
  }
  nmhash::detail::fail("unknown schedule preset '", name, "' (quick, medium or paper)");
}

}  // namespace nmhash::hashing
