// Bit-level transforms of packed codes used by the Neurons Merging Layer and
// its ablations: keep, drop or reorder bits, and merge groups of bits into
// one bit by majority vote.
#pragma once

#include <cstddef>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

// Output bit t is input bit bits[t]: keeps a subset of bits and/or reorders
// them. Every index must be < K and appear at most once.
inline packed_codes select_bits(const packed_codes& c, const std::vector<std::size_t>& bits) {
  require(!bits.empty(), "select_bits: no bit selected");
  std::vector<char> seen(c.bits(), 0);
  for (std::size_t t = 0; t < bits.size(); ++t) {
    require(bits[t] < c.bits(), "select_bits: bit index ", bits[t], " at position ", t,
            " is out of range for K = ", c.bits());
    require(!seen[bits[t]], "select_bits: bit ", bits[t], " selected twice");
    seen[bits[t]] = 1;
  }
  packed_codes out(c.size(), bits.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const std::uint64_t* src = c.row(i);
    std::uint64_t* dst = out.row(i);
    for (std::size_t t = 0; t < bits.size(); ++t) {
      const std::uint64_t b = (src[bits[t] / 64] >> (bits[t] % 64)) & 1u;
      dst[t / 64] |= b << (t % 64);
    }
  }
  return out;
}

// Removes the listed bits; the remaining ones keep their relative order.
inline packed_codes drop_bits(const packed_codes& c, const std::vector<std::size_t>& bits) {
  std::vector<char> drop(c.bits(), 0);
  for (std::size_t b : bits) {
    require(b < c.bits(), "drop_bits: bit index ", b, " is out of range for K = ", c.bits());
    require(!drop[b], "drop_bits: bit ", b, " listed twice");
    drop[b] = 1;
  }
  std::vector<std::size_t> keep;
  for (std::size_t j = 0; j < c.bits(); ++j)
    if (!drop[j]) keep.push_back(j);
  require(!keep.empty(), "drop_bits: every bit of the K = ", c.bits(), " bits would be dropped");
  return select_bits(c, keep);
}

// Output bit g is the majority vote of the input bits in groups[g] (their
// values +1 / -1). Tie rule, for groups of even size: the vote goes to the
// value of the group's first listed bit. This keeps codes binary and makes a
// two-bit group reproduce its first member exactly, so which member comes
// first is the caller's choice (the NMLayer lists a node's children in
// ascending neuron order). Groups must be non-empty and disjoint.
inline packed_codes merge_majority(const packed_codes& c,
                                   const std::vector<std::vector<std::size_t>>& groups) {
  require(!groups.empty(), "merge_majority: no group given");
  std::vector<char> used(c.bits(), 0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    require(!groups[g].empty(), "merge_majority: group ", g, " is empty");
    for (std::size_t b : groups[g]) {
      require(b < c.bits(), "merge_majority: bit index ", b, " in group ", g,
              " is out of range for K = ", c.bits());
      require(!used[b], "merge_majority: bit ", b, " belongs to more than one group");
      used[b] = 1;
    }
  }
  packed_codes out(c.size(), groups.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const std::uint64_t* src = c.row(i);
    std::uint64_t* dst = out.row(i);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const auto& grp = groups[g];
      std::size_t ones = 0;
      for (std::size_t b : grp) ones += (src[b / 64] >> (b % 64)) & 1u;
      const std::size_t zeros = grp.size() - ones;
      bool v;
      if (ones != zeros)
        v = ones > zeros;
      else
        v = (src[grp[0] / 64] >> (grp[0] % 64)) & 1u;
      dst[g / 64] |= std::uint64_t{v} << (g % 64);
    }
  }
  return out;
}

}  // namespace nmhash
