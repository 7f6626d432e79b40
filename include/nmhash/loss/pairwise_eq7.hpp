// The paper's pairwise hashing loss, Eq. (7) (after Liu et al., 2012): the
// inner product of two K-bit relaxed codes should be K s_ij, s_ij = +1 for
// images that share a label and -1 otherwise, plus a quantization term
// weighted by eta. With j over the memory bank of the training set and the
// normalisation of the ADSH reference code (both sums divided by the number
// of pairs, B N):
//   L = [ sum_ij (u_i . U_j - K s_ij)^2 + eta sum_i ||sgn(u_i) - u_i||^2 ] / (B N).
// The paper's eta = 1200 is set against this scale: the quantization term
// of a batch (B rows) is weighed against its B N pair terms. The bank is a
// constant; the gradient flows through u.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "nmhash/loss/bank_products.hpp"
#include "nmhash/loss/memory_bank.hpp"

namespace nmhash::loss {

template <class T>
double pairwise_eq7(const tensor<T>& u, const std::vector<std::size_t>& idx,
                    const memory_bank<T>& bank, double eta, tensor<T>& du) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  bank.check_batch(u, idx, "pairwise_eq7");
  const auto B = static_cast<Eigen::Index>(idx.size()), N = static_cast<Eigen::Index>(bank.size()),
             K = static_cast<Eigen::Index>(bank.bits());
  Eigen::Map<const matrix> Um(u.data(), B, K), Bank(bank.rows(), N, K);
  matrix r;
  detail::batch_times_bank_t(r, Um, Bank, T(1));  // becomes the residual u_i . U_j - K s_ij
  double loss = 0;
  for (Eigen::Index i = 0; i < B; ++i)
    for (Eigen::Index j = 0; j < N; ++j) {
      const double s = bank.similar(idx[static_cast<std::size_t>(i)], static_cast<std::size_t>(j)) ? 1.0 : -1.0;
      r(i, j) = static_cast<T>(r(i, j) - static_cast<double>(K) * s);
      loss += static_cast<double>(r(i, j)) * r(i, j);
    }
  const double pairs = static_cast<double>(B) * static_cast<double>(N);
  du.resize(u.shape());
  Eigen::Map<matrix> D(du.data(), B, K);
  detail::coef_times_bank(D, r, Bank, static_cast<T>(2.0 / pairs));
  double quant = 0;
  for (std::size_t e = 0; e < u.size(); ++e) {
    const double v = u[e], d = v - (v >= 0 ? 1.0 : -1.0);
    quant += d * d;
    du[e] = static_cast<T>(du[e] + eta * 2.0 * d / pairs);
  }
  return (loss + eta * quant) / pairs;
}

}  // namespace nmhash::loss
