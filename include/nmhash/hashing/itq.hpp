// Iterative quantization (Gong & Lazebnik, CVPR 2011), the unsupervised
// baseline: centre the features, project on the top K principal
// directions, then find the rotation R that minimises the quantization
// loss ||B - V R||_F^2 by alternating B = sgn(V R) and the orthogonal
// Procrustes solution R = U_A U_B^T of svd(B^T V) = U_B S U_A^T, as the
// authors' reference code. Works on any feature matrix (raw pixels, or a
// backbone's penultimate features).
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <random>
#include <vector>

#include "nmhash/codes/pack.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"

namespace nmhash::hashing {

struct itq_model {
  Eigen::VectorXd mean;        // d
  Eigen::MatrixXd projection;  // d x K, the top K principal directions
  Eigen::MatrixXd rotation;    // K x K, orthogonal
  std::vector<double> quantization_loss;  // ||B - V R||^2 / n after each iteration

  std::size_t dims() const { return static_cast<std::size_t>(mean.size()); }
  std::size_t bits() const { return static_cast<std::size_t>(rotation.rows()); }

  // Codes of n row-major feature vectors of dims() values: sgn((x - mean) W R).
  template <class T>
  packed_codes encode(const T* x, std::size_t n, std::size_t d) const {
    require(d == dims(), "itq: features of ", d, " values, the model was fitted on ", dims());
    const Eigen::MatrixXd m = projection * rotation;
    std::vector<double> out(n * bits());
    for (std::size_t i = 0; i < n; ++i) {
      Eigen::VectorXd v(static_cast<Eigen::Index>(d));
      for (std::size_t j = 0; j < d; ++j) v(static_cast<Eigen::Index>(j)) = static_cast<double>(x[i * d + j]);
      const Eigen::VectorXd z = m.transpose() * (v - mean);
      for (std::size_t k = 0; k < bits(); ++k) out[i * bits() + k] = z(static_cast<Eigen::Index>(k));
    }
    return pack_signs(out.data(), n, bits());
  }
};

// Fits ITQ on n row-major feature vectors of d values.
namespace detail {

// lhs * rhs in fixed blocks of result rows through parallel_blocks: the
// same bits for every thread count.
template <class L, class R>
Eigen::MatrixXd fixed_product(const L& lhs, const R& rhs) {
  Eigen::MatrixXd out(lhs.rows(), rhs.cols());
  parallel_blocks(lhs.rows(), 64, [&](Eigen::Index r0, Eigen::Index r1) {
    out.middleRows(r0, r1 - r0).noalias() = lhs.middleRows(r0, r1 - r0) * rhs;
  });
  return out;
}

}  // namespace detail

template <class T>
itq_model fit_itq(const T* x, std::size_t n, std::size_t d, std::size_t bits, std::size_t iterations = 50,
                  std::uint64_t seed = 0) {
  require(bits >= 1 && bits <= d, "itq: ", bits, " bits need 1 <= K <= feature dimension ", d);
  require(n >= 2, "itq: needs at least 2 training vectors, got ", n);
  using matrix = Eigen::MatrixXd;
  const auto N = static_cast<Eigen::Index>(n), D = static_cast<Eigen::Index>(d), K = static_cast<Eigen::Index>(bits);
  matrix X(N, D);
  for (Eigen::Index i = 0; i < N; ++i)
    for (Eigen::Index j = 0; j < D; ++j) {
      const double v = static_cast<double>(x[static_cast<std::size_t>(i) * d + static_cast<std::size_t>(j)]);
      require(std::isfinite(v), "itq: feature ", j, " of vector ", i, " is not finite");
      X(i, j) = v;
    }
  itq_model m;
  m.mean = X.colwise().mean().transpose();
  X.rowwise() -= m.mean.transpose();
  const matrix Xt = X.transpose();
  const matrix cov = detail::fixed_product(Xt, X) / static_cast<double>(n - 1);
  Eigen::SelfAdjointEigenSolver<matrix> eig(cov);
  require(eig.info() == Eigen::Success, "itq: the eigen-decomposition of the covariance failed");
  // Eigenvalues ascend: the top K directions are the last K columns.
  m.projection = eig.eigenvectors().rightCols(K).rowwise().reverse();
  const matrix V = detail::fixed_product(X, m.projection);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> n01;
  matrix R0(K, K);
  for (Eigen::Index i = 0; i < K; ++i)
    for (Eigen::Index j = 0; j < K; ++j) R0(i, j) = n01(gen);
  Eigen::JacobiSVD<matrix> init(R0, Eigen::ComputeFullU);
  matrix R = init.matrixU();
  matrix B(N, K);
  for (std::size_t it = 0; it <= iterations; ++it) {
    const matrix Z = detail::fixed_product(V, R);
    B = Z.unaryExpr([](double v) { return v >= 0 ? 1.0 : -1.0; });
    m.quantization_loss.push_back((B - Z).squaredNorm() / static_cast<double>(n));
    if (it == iterations) break;
    const matrix Bt = B.transpose();
    Eigen::JacobiSVD<matrix> svd(detail::fixed_product(Bt, V), Eigen::ComputeFullU | Eigen::ComputeFullV);
    R = svd.matrixV() * svd.matrixU().transpose();
  }
  m.rotation = R;
  return m;
}

}  // namespace nmhash::hashing
