// The two matrix products of every pairwise hashing loss, evaluated in
// fixed blocks of batch rows through parallel_blocks, so a loss gives the
// same bits for every thread count.
#pragma once

#include <Eigen/Core>

#include "nmhash/core/parallel.hpp"

namespace nmhash::loss::detail {

inline constexpr Eigen::Index bank_rows_per_block = 16;

// out = (a * bank^T) * scale: the inner products of the batch rows with
// every bank row (B x N).
template <class Out, class A, class Bank, class T>
void batch_times_bank_t(Out& out, const A& a, const Bank& bank, T scale) {
  out.resize(a.rows(), bank.rows());
  parallel_blocks(a.rows(), bank_rows_per_block, [&](Eigen::Index r0, Eigen::Index r1) {
    out.middleRows(r0, r1 - r0).noalias() = (a.middleRows(r0, r1 - r0) * bank.transpose()) * scale;
  });
}

// out = (c * bank) * scale: pair coefficients (B x N) back to the outputs
// (B x K).
template <class Out, class C, class Bank, class T>
void coef_times_bank(Out& out, const C& c, const Bank& bank, T scale) {
  parallel_blocks(c.rows(), bank_rows_per_block, [&](Eigen::Index r0, Eigen::Index r1) {
    out.middleRows(r0, r1 - r0).noalias() = (c.middleRows(r0, r1 - r0) * bank) * scale;
  });
}

}  // namespace nmhash::loss::detail
