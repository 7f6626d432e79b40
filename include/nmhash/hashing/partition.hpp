// The grouping of an NMLayer: which of the B_in hashing neurons make up each
// of its K output nodes. A partition of the original neurons is the exact
// view of any sequence of merges (a merge of merged nodes is the union of
// their children), so progressive stages compose without nesting layers.
// Neurons may also be left out of every node (the Select ablation drops
// bits); they then output nothing and receive no gradient.
//
// Canonical order: each node lists its children in ascending neuron order,
// and nodes are ordered by their smallest child. Under the default tie rule
// the first listed child decides majority-vote ties (codes/bit_ops.hpp,
// merge_majority); vote_tie::summed_output decides them by the sign of the
// sum of the children's real outputs instead.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/error.hpp"

namespace nmhash::hashing {

// How a merged node of even size breaks a tied majority vote. The paper
// (section 3.5) leaves a tie as an uncertain 0; codes must be binary.
enum class vote_tie {
  first_child,    // the sign of the node's first child (lowest neuron index)
  summed_output,  // the sign of the sum of the children's real outputs (sgn(0) = +1)
};

inline const char* to_string(vote_tie t) { return t == vote_tie::first_child ? "first_child" : "summed_output"; }
inline vote_tie parse_vote_tie(const std::string& s) {
  if (s == "first_child") return vote_tie::first_child;
  require(s == "summed_output", "vote tie rule '", s, "' is not one of first_child, summed_output");
  return vote_tie::summed_output;
}

// The evaluation-mode output of one node over the real outputs v of the
// B_in neurons: (#plus - #minus) / size, and on a tie +-0.5 / size with the
// sign the tie rule gives; its sign is the node's bit.
template <class T>
T node_vote(const T* v, const std::vector<std::size_t>& children, vote_tie tie) {
  long votes = 0;
  for (std::size_t i : children) votes += v[i] >= T(0) ? 1 : -1;
  const double size = static_cast<double>(children.size());
  if (votes != 0) return static_cast<T>(static_cast<double>(votes) / size);
  bool plus = v[children[0]] >= T(0);
  if (tie == vote_tie::summed_output) {
    double sum = 0;
    for (std::size_t i : children) sum += static_cast<double>(v[i]);
    plus = sum >= 0;
  }
  return static_cast<T>((plus ? 0.5 : -0.5) / size);
}

// Disjoint sets over 0..n-1 with path halving and union by size.
class union_find {
 public:
  explicit union_find(std::size_t n) : parent_(n), size_(n, 1) {
    std::iota(parent_.begin(), parent_.end(), std::size_t{0});
  }
  std::size_t find(std::size_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  // Joins the sets of a and b; false when they already were one set.
  bool unite(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return false;
    if (size_[a] < size_[b]) std::swap(a, b);
    parent_[b] = a;
    size_[a] += size_[b];
    return true;
  }

 private:
  std::vector<std::size_t> parent_, size_;
};

class neuron_partition {
 public:
  // Value of node_ids() for a neuron that belongs to no node.
  static constexpr std::size_t unused = static_cast<std::size_t>(-1);

  neuron_partition() = default;
  // The identity: every neuron is its own node.
  explicit neuron_partition(std::size_t inputs) : inputs_(inputs), groups_(inputs) {
    require(inputs >= 1, "neuron_partition: needs at least one neuron");
    for (std::size_t i = 0; i < inputs; ++i) groups_[i] = {i};
  }

  // From explicit groups (checked: non-empty, disjoint, indices < inputs);
  // the result is in canonical order.
  static neuron_partition from_groups(std::size_t inputs, std::vector<std::vector<std::size_t>> groups) {
    require(!groups.empty(), "neuron_partition: no node given");
    std::vector<char> seen(inputs, 0);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      require(!groups[g].empty(), "neuron_partition: node ", g, " has no neuron");
      for (std::size_t n : groups[g]) {
        require(n < inputs, "neuron_partition: neuron ", n, " of node ", g, " is out of range for ", inputs,
                " neurons");
        require(!seen[n], "neuron_partition: neuron ", n, " belongs to more than one node");
        seen[n] = 1;
      }
      std::sort(groups[g].begin(), groups[g].end());
    }
    std::sort(groups.begin(), groups.end());
    neuron_partition p;
    p.inputs_ = inputs;
    p.groups_ = std::move(groups);
    return p;
  }

  // From the node of every neuron (unused for none); node ids must be dense
  // 0..K-1. The inverse of node_ids().
  static neuron_partition from_node_ids(const std::vector<std::size_t>& node_of) {
    std::size_t k = 0;
    for (std::size_t id : node_of)
      if (id != unused) k = std::max(k, id + 1);
    std::vector<std::vector<std::size_t>> groups(k);
    for (std::size_t n = 0; n < node_of.size(); ++n)
      if (node_of[n] != unused) groups[node_of[n]].push_back(n);
    for (std::size_t g = 0; g < k; ++g)
      require(!groups[g].empty(), "neuron_partition: node id ", g, " has no neuron (ids must be dense)");
    return from_groups(node_of.size(), std::move(groups));
  }

  std::size_t inputs() const { return inputs_; }
  std::size_t nodes() const { return groups_.size(); }
  const std::vector<std::vector<std::size_t>>& groups() const { return groups_; }
  const std::vector<std::size_t>& children(std::size_t node) const { return groups_.at(node); }
  bool is_identity() const { return groups_.size() == inputs_; }

  std::vector<std::size_t> node_ids() const {
    std::vector<std::size_t> id(inputs_, unused);
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (std::size_t n : groups_[g]) id[n] = g;
    return id;
  }

  // Merges the listed pairs of nodes, transitively (union-find); the result
  // is in canonical order.
  neuron_partition merged(const std::vector<std::pair<std::size_t, std::size_t>>& pairs) const {
    union_find uf(nodes());
    for (const auto& [a, b] : pairs) {
      require(a < nodes() && b < nodes(), "neuron_partition::merged: pair (", a, ", ", b, ") is out of range for ",
              nodes(), " nodes");
      uf.unite(a, b);
    }
    std::vector<std::vector<std::size_t>> by_root(nodes());
    for (std::size_t g = 0; g < nodes(); ++g) {
      auto& dst = by_root[uf.find(g)];
      dst.insert(dst.end(), groups_[g].begin(), groups_[g].end());
    }
    std::vector<std::vector<std::size_t>> out;
    for (auto& g : by_root)
      if (!g.empty()) out.push_back(std::move(g));
    return from_groups(inputs_, std::move(out));
  }

  // Keeps only the listed nodes (their neurons become unused otherwise).
  neuron_partition without_nodes(const std::vector<std::size_t>& drop) const {
    std::vector<char> gone(nodes(), 0);
    for (std::size_t g : drop) {
      require(g < nodes(), "neuron_partition::without_nodes: node ", g, " is out of range for ", nodes(), " nodes");
      gone[g] = 1;
    }
    std::vector<std::vector<std::size_t>> out;
    for (std::size_t g = 0; g < nodes(); ++g)
      if (!gone[g]) out.push_back(groups_[g]);
    require(!out.empty(), "neuron_partition::without_nodes: every node would be dropped");
    return from_groups(inputs_, std::move(out));
  }

  // "{0,5} {1} {2,3,7} ...": children of each node.
  std::string str() const {
    std::string s;
    for (const auto& g : groups_) {
      if (!s.empty()) s += ' ';
      s += '{';
      for (std::size_t i = 0; i < g.size(); ++i) s += (i ? "," : "") + std::to_string(g[i]);
      s += '}';
    }
    return s;
  }

  friend bool operator==(const neuron_partition& a, const neuron_partition& b) {
    return a.inputs_ == b.inputs_ && a.groups_ == b.groups_;
  }

 private:
  std::size_t inputs_ = 0;
  std::vector<std::vector<std::size_t>> groups_;
};

// How a truncation picks the pairs of A it merges.
//  - top_m: the paper's section 3.3, the largest m entries of A (a node may
//    join several of them, so one truncation can merge m + 1 nodes into one).
//  - one_per_node: the largest entries among pairs whose two nodes were not
//    taken yet in this truncation, so each node joins at most one merge and
//    a truncation merges m disjoint pairs.
enum class truncation_rule { top_m, one_per_node };

inline const char* to_string(truncation_rule r) { return r == truncation_rule::top_m ? "top_m" : "one_per_node"; }

inline truncation_rule parse_truncation_rule(const std::string& s) {
  if (s == "top_m") return truncation_rule::top_m;
  require(s == "one_per_node", "truncation rule '", s, "' is not one of top_m, one_per_node");
  return truncation_rule::one_per_node;
}

// Truncation of a K x K symmetric adjacency matrix (row-major; the upper
// triangle i < j is read): pairs are taken in descending order of a_ij
// (ties: ascending (i, j)); a pair whose nodes are already connected by the
// pairs taken so far is skipped, since it would merge nothing, and under
// one_per_node so is a pair with a node already taken; taking stops after
// `merges` pairs or when the node count reaches `min_nodes`. So a
// truncation removes exactly min(merges, K - min_nodes) nodes and lands on
// min_nodes exactly when it is within reach (one_per_node requires that
// count to be at most K / 2). Returns the pairs taken.
inline std::vector<std::pair<std::size_t, std::size_t>> truncate_adjacency(const std::vector<double>& a,
                                                                           std::size_t k, std::size_t merges,
                                                                           std::size_t min_nodes,
                                                                           truncation_rule rule = truncation_rule::top_m) {
  require(a.size() == k * k, "truncate_adjacency: matrix has ", a.size(), " entries, expected K x K = ", k * k);
  require(min_nodes >= 1, "truncate_adjacency: min_nodes must be at least 1");
  const std::size_t wanted = k > min_nodes ? std::min(merges, k - min_nodes) : 0;
  require(rule == truncation_rule::top_m || 2 * wanted <= k, "truncate_adjacency: one_per_node cannot merge ", wanted,
          " disjoint pairs among K = ", k, " nodes (at most ", k / 2, ")");
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = i + 1; j < k; ++j) pairs.emplace_back(i, j);
  std::stable_sort(pairs.begin(), pairs.end(), [&](const auto& x, const auto& y) {
    return a[x.first * k + x.second] > a[y.first * k + y.second];
  });
  union_find uf(k);
  std::vector<char> used(k, 0);
  std::vector<std::pair<std::size_t, std::size_t>> taken;
  std::size_t nodes = k;
  for (const auto& [i, j] : pairs) {
    if (taken.size() >= merges || nodes <= min_nodes) break;
    if (rule == truncation_rule::one_per_node && (used[i] || used[j])) continue;
    if (!uf.unite(i, j)) continue;
    used[i] = used[j] = 1;
    taken.emplace_back(i, j);
    --nodes;
  }
  return taken;
}

}  // namespace nmhash::hashing
