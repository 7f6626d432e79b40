// The pairwise logistic likelihood shared by DPSH, DHN and HashNet: for
// theta_ij between batch row i and bank row j and s_ij = 1 for pairs that
// share a label,
//   l_ij = log(1 + exp(-|theta_ij|)) + max(theta_ij, 0) - s_ij theta_ij,
// its derivative sigmoid(theta_ij) - s_ij, and optional weights per pair
// class (similar / dissimilar). Computed in the element type with Eigen's
// vectorized exp and log1p; rows run in parallel and the sum is taken row by
// row in a fixed order, so it does not depend on the thread count.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/loss/memory_bank.hpp"

namespace nmhash::loss::detail {

// Returns the weighted sum of l_ij over all pairs and writes
// w_ij (sigmoid(theta_ij) - s_ij) into coef.
template <class T, class Matrix>
double pairwise_logistic(const Matrix& theta, const std::vector<std::size_t>& idx, const memory_bank<T>& bank,
                         double w_similar, double w_dissimilar, Matrix& coef) {
  using row = Eigen::Array<T, 1, Eigen::Dynamic>;
  const Eigen::Index rows = theta.rows(), cols = theta.cols();
  coef.resize(rows, cols);
  std::vector<double> row_loss(static_cast<std::size_t>(rows), 0.0);
  const auto& lab = bank.labels();
  parallel_for(static_cast<std::int64_t>(rows), threads{}, 4, [&](std::int64_t ri) {
    const auto i = static_cast<Eigen::Index>(ri);
    const std::size_t a = idx[static_cast<std::size_t>(i)];
    row s(cols);
    if (!lab.is_multi()) {
      const auto* ids = lab.ids();
      const auto mine = ids[a];
      for (Eigen::Index j = 0; j < cols; ++j) s[j] = ids[j] == mine ? T(1) : T(0);
    } else {
      for (Eigen::Index j = 0; j < cols; ++j) s[j] = bank.similar(a, static_cast<std::size_t>(j)) ? T(1) : T(0);
    }
    const auto t = theta.row(i).array();
    const row w = s * static_cast<T>(w_similar) + (T(1) - s) * static_cast<T>(w_dissimilar);
    const row e = (-t.abs()).exp();  // sigmoid(t) = 1 / (1 + e) for t >= 0, e / (1 + e) below
    row_loss[static_cast<std::size_t>(i)] =
        static_cast<double>((w * (e.log1p() + t.max(T(0)) - s * t)).sum());
    coef.row(i) = (w * ((t >= T(0)).select(row::Ones(cols), e) / (T(1) + e) - s)).matrix();
  });
  double loss = 0;
  for (double l : row_loss) loss += l;
  return loss;
}

}  // namespace nmhash::loss::detail
