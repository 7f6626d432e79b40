// The HashNet loss (Cao et al., ICCV 2017): weighted maximum likelihood on
// pairs, for imbalanced similar / dissimilar data. With theta_ij =
// alpha h_i . H_j between the batch outputs h (after the scaled tanh of
// nn/scaled_tanh.hpp) and the memory bank H, S1 / S0 the numbers of similar /
// dissimilar pairs among the B x N of the batch and S = S0 + S1,
//   L = (1 / S) sum_ij w_ij [ log(1 + exp(-|theta_ij|)) + max(theta_ij, 0) - s_ij theta_ij ],
//   w_ij = S / S1 for similar pairs, S / S0 for dissimilar ones,
// as the paper's Eq. (4)-(5) and the DeepHash-pytorch code. alpha: the
// paper's adaptive sigmoid parameter; the authors' code uses 10 / K,
// DeepHash-pytorch 0.1, and so does nmhash (hashnet_defaults::alpha): on
// fmnist-dpsh 10 / K collapsed the codes at 12 and 24 bits (docs/training.md).
// The bank is a constant.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "nmhash/loss/dhn.hpp"

namespace nmhash::loss {

namespace hashnet_defaults {
inline constexpr double alpha = 0.1;
}  // namespace hashnet_defaults

template <class T>
double hashnet(const tensor<T>& h, const std::vector<std::size_t>& idx, const memory_bank<T>& bank, double alpha,
               tensor<T>& dh) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  bank.check_batch(h, idx, "hashnet");
  require(alpha > 0, "hashnet: alpha must be positive, got ", alpha);
  const auto B = static_cast<Eigen::Index>(idx.size()), N = static_cast<Eigen::Index>(bank.size()),
             K = static_cast<Eigen::Index>(bank.bits());
  Eigen::Map<const matrix> Hm(h.data(), B, K), Bank(bank.rows(), N, K);
  matrix theta;
  detail::batch_times_bank_t(theta, Hm, Bank, static_cast<T>(alpha));
  double s1 = 0;
  for (Eigen::Index i = 0; i < B; ++i)
    for (Eigen::Index j = 0; j < N; ++j) s1 += bank.similar(idx[static_cast<std::size_t>(i)], static_cast<std::size_t>(j));
  const double s = static_cast<double>(B) * static_cast<double>(N), s0 = s - s1;
  // A batch with one kind of pair only: that kind gets weight 1.
  const double w1 = s1 > 0 ? s / s1 : 0.0, w0 = s0 > 0 ? s / s0 : 0.0;
  matrix coef;
  const double loss = detail::pairwise_logistic(theta, idx, bank, w1, w0, coef);
  dh.resize(h.shape());
  Eigen::Map<matrix> D(dh.data(), B, K);
  detail::coef_times_bank(D, coef, Bank, static_cast<T>(alpha / s));
  return loss / s;
}

}  // namespace nmhash::loss
