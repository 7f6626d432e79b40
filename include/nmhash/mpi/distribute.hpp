// Moving codes, labels and indexes between the ranks of a communicator:
// the root's object on every rank (broadcast), or one consecutive part of
// it on each rank (scatter: rank r receives items [split_begin(n, P, r),
// split_begin(n, P, r + 1)), so that the parts in rank order are the whole).
// All of these are collective; arguments other than the root's are ignored
// where they are inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/mpi/comm.hpp"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash::mpi {

namespace detail {

inline constexpr int tag_scatter = 7101;

// The root sends each other rank elements [begin(r), begin(r + 1)) of
// `data` (elements of `width` values each); returns this rank's part.
template <class T>
std::vector<T> scatter_rows(const communicator& c, const T* data, std::size_t n, std::size_t width, int root) {
  const int P = c.size(), r = c.rank();
  const std::size_t b = split_begin(n, P, r), e = split_begin(n, P, r + 1);
  std::vector<T> mine((e - b) * width);
  if (r == root) {
    for (int dest = 0; dest < P; ++dest) {
      const std::size_t db = split_begin(n, P, dest), de = split_begin(n, P, dest + 1);
      if (dest == root)
        std::copy(data + db * width, data + de * width, mine.begin());
      else
        c.send(data + db * width, (de - db) * width, dest, tag_scatter);
    }
  } else {
    c.receive(mine.data(), mine.size(), root, tag_scatter);
  }
  return mine;
}

}  // namespace detail

inline void broadcast(const communicator& c, packed_codes& codes, int root = 0) {
  std::uint64_t shape[2] = {codes.size(), codes.bits()};
  c.broadcast(shape, 2, root);
  if (c.rank() != root) codes = packed_codes(static_cast<std::size_t>(shape[0]), static_cast<std::size_t>(shape[1]));
  c.broadcast(codes.data(), codes.size() * codes.words_per_code(), root);
}

inline void broadcast(const communicator& c, labels& l, int root = 0) {
  std::uint64_t shape[3] = {l.size(), l.is_multi() ? 1u : 0u, l.num_labels()};
  c.broadcast(shape, 3, root);
  if (shape[1] == 0) {
    std::vector<std::int32_t> ids;
    if (c.rank() == root) ids.assign(l.ids(), l.ids() + l.size());
    c.broadcast(ids, root);
    if (c.rank() != root) l = labels::single(std::move(ids));
  } else {
    std::vector<std::uint64_t> sets;
    if (c.rank() == root) sets.assign(l.sets(), l.sets() + l.size() * l.words());
    c.broadcast(sets, root);
    if (c.rank() != root)
      l = labels::multi_bitsets(std::move(sets), static_cast<std::size_t>(shape[0]), static_cast<std::size_t>(shape[2]));
  }
}

// This rank's consecutive part of the root's codes.
inline packed_codes scatter(const communicator& c, const packed_codes& whole, int root = 0) {
  std::uint64_t shape[2] = {whole.size(), whole.bits()};
  c.broadcast(shape, 2, root);
  const auto n = static_cast<std::size_t>(shape[0]);
  packed_codes probe(0, static_cast<std::size_t>(shape[1]));
  const std::size_t words = probe.words_per_code();
  std::vector<std::uint64_t> mine = detail::scatter_rows(c, whole.data(), n, words, root);
  packed_codes out(mine.size() / words, static_cast<std::size_t>(shape[1]));
  if (!mine.empty()) std::memcpy(out.data(), mine.data(), mine.size() * sizeof(std::uint64_t));
  return out;
}

// This rank's consecutive part of the root's labels.
inline labels scatter(const communicator& c, const labels& whole, int root = 0) {
  std::uint64_t shape[4] = {whole.size(), whole.is_multi() ? 1u : 0u, whole.num_labels(), whole.words()};
  c.broadcast(shape, 4, root);
  const auto n = static_cast<std::size_t>(shape[0]);
  if (shape[1] == 0) return labels::single(detail::scatter_rows(c, whole.ids(), n, 1, root));
  const auto words = static_cast<std::size_t>(shape[3]);
  std::vector<std::uint64_t> sets = detail::scatter_rows(c, whole.sets(), n, words, root);
  const std::size_t m = sets.size() / words;
  return labels::multi_bitsets(std::move(sets), m, static_cast<std::size_t>(shape[2]));
}

// This rank's consecutive part of the root's index, with its ids when the
// index holds ids of its own. A part of an index that numbers its codes by
// position numbers them from 0: sharded_index adds the part's offset.
inline binary_index scatter(const communicator& c, const binary_index& whole, int root = 0) {
  std::uint64_t shape[3] = {whole.size(), whole.bits(), whole.has_ids() ? 1u : 0u};
  c.broadcast(shape, 3, root);
  const auto n = static_cast<std::size_t>(shape[0]);
  binary_index part(static_cast<std::size_t>(shape[1]));
  const std::size_t cs = part.code_size();
  std::vector<std::uint8_t> codes = detail::scatter_rows(c, whole.codes(), n, cs, root);
  const std::size_t m = codes.size() / cs;
  if (shape[2]) {
    std::vector<std::int64_t> ids = detail::scatter_rows(c, whole.ids(), n, 1, root);
    part.add_bytes(codes.data(), m, ids.data());
  } else {
    part.add_bytes(codes.data(), m);
  }
  return part;
}

}  // namespace nmhash::mpi
