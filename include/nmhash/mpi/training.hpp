// Data-parallel training over MPI: the hooks of
// hashing::progressive_trainer's data_parallel (progressive_trainer.hpp)
// on a communicator. Needs nmhash::mpi and nmhash::training.
//
// Gathering rows is an MPI_Allgatherv. The gradient sum does not use
// MPI_Allreduce, whose order of additions is the implementation's: each
// rank owns a consecutive part of the buffer, receives that part from every
// rank (MPI_Alltoallv), adds the P contributions in rank order, and the
// sums are gathered back (MPI_Allgatherv). The result is the same on every
// rank and in every run with the same P, whatever MPI's algorithms; it
// moves 2 (P - 1) / P of the buffer per rank, as a ring all-reduce.
#pragma once

#include <climits>
#include <cstddef>
#include <cstring>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#include "nmhash/mpi/comm.hpp"

namespace nmhash::mpi {

namespace detail {

// counts and displacements (in elements) of the split of n items x width.
inline void split_counts(std::size_t n, std::size_t width, int P, std::vector<int>& count, std::vector<int>& disp) {
  count.assign(static_cast<std::size_t>(P), 0);
  disp.assign(static_cast<std::size_t>(P), 0);
  require(n * width <= static_cast<std::size_t>(INT_MAX), "mpi::data_parallel: ", n, " x ", width,
          " elements exceed what one MPI call takes");
  for (int r = 0; r < P; ++r) {
    const std::size_t b = split_begin(n, P, r), e = split_begin(n, P, r + 1);
    count[static_cast<std::size_t>(r)] = static_cast<int>((e - b) * width);
    disp[static_cast<std::size_t>(r)] = static_cast<int>(b * width);
  }
}

}  // namespace detail

// Gradient sum in rank order (see the header comment), in place, on every rank.
template <class T>
void sum_in_rank_order(const communicator& c, T* buf, std::size_t n) {
  const int P = c.size();
  if (P == 1) return;
  std::vector<int> count, disp;
  detail::split_counts(n, 1, P, count, disp);
  const auto me = static_cast<std::size_t>(c.rank());
  const std::size_t mine = static_cast<std::size_t>(count[me]);
  // Every rank sends part r of its buffer to rank r, and receives its own
  // part from every rank, one after the other in rank order.
  std::vector<T> parts(mine * static_cast<std::size_t>(P));
  std::vector<int> rcount(static_cast<std::size_t>(P), static_cast<int>(mine)), rdisp(static_cast<std::size_t>(P));
  for (int r = 0; r < P; ++r) rdisp[static_cast<std::size_t>(r)] = static_cast<int>(mine * static_cast<std::size_t>(r));
  detail::check(MPI_Alltoallv(buf, count.data(), disp.data(), detail::datatype<T>(), parts.data(), rcount.data(),
                              rdisp.data(), detail::datatype<T>(), c.get()),
                "MPI_Alltoallv");
  std::vector<T> sum(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(mine));
  for (std::size_t s = 1; s < static_cast<std::size_t>(P); ++s)
    for (std::size_t i = 0; i < mine; ++i) sum[i] += parts[s * mine + i];
  detail::check(MPI_Allgatherv(sum.data(), static_cast<int>(mine), detail::datatype<T>(), buf, count.data(),
                               disp.data(), detail::datatype<T>(), c.get()),
                "MPI_Allgatherv");
}

// The data_parallel hooks over `c` (which must outlive the trainer).
template <class T>
hashing::data_parallel<T> data_parallel(const communicator& c) {
  hashing::data_parallel<T> d;
  d.rank = c.rank();
  d.ranks = c.size();
  d.gather_rows = [&c](const T* local, T* full, std::size_t rows, std::size_t width) {
    std::vector<int> count, disp;
    detail::split_counts(rows, width, c.size(), count, disp);
    const auto me = static_cast<std::size_t>(c.rank());
    detail::check(MPI_Allgatherv(count[me] > 0 ? local : nullptr, count[me], detail::datatype<T>(), full, count.data(),
                                 disp.data(), detail::datatype<T>(), c.get()),
                  "MPI_Allgatherv");
  };
  d.sum = [&c](T* buf, std::size_t n) { sum_in_rank_order(c, buf, n); };
  return d;
}

}  // namespace nmhash::mpi
