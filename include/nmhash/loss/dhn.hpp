// The DHN loss (Zhu et al., AAAI 2016) as DeepHash-pytorch computes it: a
// pairwise cross-entropy on the inner products theta_ij = u_i . U_j of the
// batch outputs u and the memory bank U (already updated with this batch),
// s_ij = 1 for image pairs that share a label and 0 otherwise, plus the
// paper's smooth quantization loss log cosh(|u| - 1):
//   L = mean_ij [ log(1 + exp(-|theta_ij|)) + max(theta_ij, 0) - s_ij theta_ij ]
//       + lambda * mean_ik log cosh(|u_ik| - 1).
// The paper scales theta by an adaptive alpha inside the sigmoid; the public
// code uses theta as is, and so does nmhash (`scale` = 1), which keeps the
// DPSH relation (DPSH is this loss on theta / 2 with a quadratic
// quantizer). The bank is a constant; the gradient flows through u.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "nmhash/loss/bank_products.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/loss/pairwise_logistic.hpp"

namespace nmhash::loss {

template <class T>
double dhn(const tensor<T>& u, const std::vector<std::size_t>& idx, const memory_bank<T>& bank, double lambda,
           tensor<T>& du, double scale = 1.0) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  bank.check_batch(u, idx, "dhn");
  const auto B = static_cast<Eigen::Index>(idx.size()), N = static_cast<Eigen::Index>(bank.size()),
             K = static_cast<Eigen::Index>(bank.bits());
  Eigen::Map<const matrix> Um(u.data(), B, K), Bank(bank.rows(), N, K);
  matrix theta;
  detail::batch_times_bank_t(theta, Um, Bank, static_cast<T>(scale));
  matrix coef;
  const double pairs = static_cast<double>(B) * static_cast<double>(N);
  const double loss = detail::pairwise_logistic(theta, idx, bank, 1.0, 1.0, coef);
  du.resize(u.shape());
  Eigen::Map<matrix> D(du.data(), B, K);
  detail::coef_times_bank(D, coef, Bank, static_cast<T>(scale / pairs));
  double quant = 0;
  const double outputs = static_cast<double>(B) * static_cast<double>(K);
  for (std::size_t e = 0; e < u.size(); ++e) {
    const double v = u[e], a = std::abs(v) - 1.0;
    quant += std::log(std::cosh(a));
    // d/dv log cosh(|v| - 1) = tanh(|v| - 1) sgn(v)
    du[e] = static_cast<T>(du[e] + lambda * std::tanh(a) * (v >= 0 ? 1.0 : -1.0) / outputs);
  }
  return loss / pairs + lambda * quant / outputs;
}

}  // namespace nmhash::loss
