// The DSH loss (Liu et al., CVPR 2016): contrastive with a margin on the
// squared Euclidean distance of relaxed codes, plus an L1 regulariser that
// pulls every output to +-1. With d_ij = ||u_i - U_j||^2 between the batch
// outputs and the memory bank,
//   L = mean_ij [ s_ij d_ij / 2 + (1 - s_ij) max(m - d_ij, 0) / 2 ]
//       + alpha * mean_ik | |u_ik| - 1 |,
// margin m = 2K by default (the paper's choice), alpha = 0.01 in the paper
// and 0.1 in DeepHash-pytorch. The means over the B x N pairs and B x K
// outputs follow DeepHash-pytorch; the paper sums over pairs of a batch.
// The bank is a constant.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "nmhash/loss/bank_products.hpp"
#include "nmhash/loss/memory_bank.hpp"

namespace nmhash::loss {

template <class T>
double dsh(const tensor<T>& u, const std::vector<std::size_t>& idx, const memory_bank<T>& bank, double margin,
           double alpha, tensor<T>& du) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  bank.check_batch(u, idx, "dsh");
  const auto B = static_cast<Eigen::Index>(idx.size()), N = static_cast<Eigen::Index>(bank.size()),
             K = static_cast<Eigen::Index>(bank.bits());
  Eigen::Map<const matrix> Um(u.data(), B, K), Bank(bank.rows(), N, K);
  // d_ij = |u_i|^2 + |U_j|^2 - 2 u_i . U_j
  matrix dot;
  detail::batch_times_bank_t(dot, Um, Bank, T(1));
  const auto un = Um.rowwise().squaredNorm();
  const auto bn = Bank.rowwise().squaredNorm();
  matrix c(B, N);  // dL/dd_ij times B N
  double loss = 0;
  for (Eigen::Index i = 0; i < B; ++i)
    for (Eigen::Index j = 0; j < N; ++j) {
      const double d = static_cast<double>(un(i)) + static_cast<double>(bn(j)) - 2.0 * static_cast<double>(dot(i, j));
      if (bank.similar(idx[static_cast<std::size_t>(i)], static_cast<std::size_t>(j))) {
        loss += 0.5 * d;
        c(i, j) = T(0.5);
      } else if (d < margin) {
        loss += 0.5 * (margin - d);
        c(i, j) = T(-0.5);
      } else {
        c(i, j) = T(0);
      }
    }
  const double pairs = static_cast<double>(B) * static_cast<double>(N);
  // dd_ij/du_i = 2 (u_i - U_j)
  du.resize(u.shape());
  Eigen::Map<matrix> D(du.data(), B, K);
  const Eigen::Matrix<T, Eigen::Dynamic, 1> rs = c.rowwise().sum();
  parallel_blocks(B, detail::bank_rows_per_block, [&](Eigen::Index r0, Eigen::Index r1) {
    const Eigen::Index m = r1 - r0;
    D.middleRows(r0, m).noalias() =
        (rs.segment(r0, m).asDiagonal() * Um.middleRows(r0, m) - c.middleRows(r0, m) * Bank) *
        static_cast<T>(2.0 / pairs);
  });
  double reg = 0;
  const double outputs = static_cast<double>(B) * static_cast<double>(K);
  for (std::size_t e = 0; e < u.size(); ++e) {
    const double v = u[e], a = std::abs(v) - 1.0;
    reg += std::abs(a);
    const double sa = a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0), sv = v >= 0 ? 1.0 : -1.0;
    du[e] = static_cast<T>(du[e] + alpha * sa * sv / outputs);
  }
  return loss / pairs + alpha * reg / outputs;
}

}  // namespace nmhash::loss
