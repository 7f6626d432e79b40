// The DPSH loss (Li et al., IJCAI 2016) as the DPSH and DeepHash-pytorch
// code computes it: with theta_ij = u_i . U_j / 2 between the batch outputs
// u and every row of the memory bank U (already updated with this batch),
// s_ij = 1 for image pairs that share a label and 0 otherwise,
//   L = mean_ij [ log(1 + exp(-|theta_ij|)) + max(theta_ij, 0) - s_ij theta_ij ]
//       + alpha * mean_ik (u_ik - sgn(u_ik))^2,
// the means over the B x N pairs and the B x K outputs. The bank is treated
// as a constant (the reference code stores detached outputs), so the
// gradient flows through u only.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "nmhash/loss/bank_products.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/loss/pairwise_logistic.hpp"

namespace nmhash::loss {

// Returns L and writes dL/du into du (shape of u). idx: the training indices
// of the batch rows.
template <class T>
double dpsh(const tensor<T>& u, const std::vector<std::size_t>& idx, const memory_bank<T>& bank,
            double alpha, tensor<T>& du) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  bank.check_batch(u, idx, "dpsh");
  const auto B = static_cast<Eigen::Index>(idx.size()), N = static_cast<Eigen::Index>(bank.size()),
             K = static_cast<Eigen::Index>(bank.bits());
  Eigen::Map<const matrix> Um(u.data(), B, K), Bank(bank.rows(), N, K);
  matrix theta;
  detail::batch_times_bank_t(theta, Um, Bank, T(0.5));
  matrix coef;  // dL/dtheta, times B N
  const double loss = detail::pairwise_logistic(theta, idx, bank, 1.0, 1.0, coef);
  const double pairs = static_cast<double>(B) * static_cast<double>(N);
  du.resize(u.shape());
  Eigen::Map<matrix> D(du.data(), B, K);
  detail::coef_times_bank(D, coef, Bank, static_cast<T>(0.5 / pairs));
  double quant = 0;
  const double outputs = static_cast<double>(B) * static_cast<double>(K);
  for (std::size_t e = 0; e < u.size(); ++e) {
    const double v = u[e], d = v - (v >= 0 ? 1.0 : -1.0);
    quant += d * d;
    du[e] = static_cast<T>(du[e] + alpha * 2.0 * d / outputs);
  }
  return loss / pairs + alpha * quant / outputs;
}

}  // namespace nmhash::loss
