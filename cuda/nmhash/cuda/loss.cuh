// The hashing losses of include/nmhash/loss/ on the device, over a device
// memory bank: DPSH, the paper's Eq. (7), DHN, HashNet and DSH, each with
// the value and the gradient of its CPU twin (same terms, same
// normalisation). Every loss is a sum over the B x N pairs of a batch row
// and a bank row plus a quantization term per output:
//   pair_terms:    one block per batch row; u_i . U_j for every bank row j,
//                  the pair's loss and its coefficient a_ij in
//                  dL/du_i = (sum_j a_ij U_j + b_i u_i) / (B N) (+ quantization)
//   pair_gradient: one block per batch row; that sum, the quantization term
//                  and its derivative.
// Row sums come back to the host and are added in row order in double, so
// the loss does not depend on the launch configuration. Single-label
// training sets (class ids), as the trainers use.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/device_utils.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash::gpu {

enum class pair_term : int { logistic, eq7, contrastive };
enum class quantizer : int { none, squared_sign, log_cosh, abs_unit };

struct pair_params {
  pair_term term = pair_term::logistic;
  double scale = 1;                            // logistic: theta = scale u_i . U_j
  double w_similar = 1, w_dissimilar = 1;      // logistic: weights per pair class
  double bits = 0;                             // eq7: the target K s_ij
  double margin = 0;                           // contrastive (DSH)
};

struct quant_params {
  quantizer kind = quantizer::none;
  double weight = 0;  // the term's weight over its normaliser
};

namespace kernels {

template <class T>
__global__ void pair_terms(const T* __restrict__ u, const std::int64_t* __restrict__ idx, const T* __restrict__ bank,
                           const std::int32_t* __restrict__ labels, const std::uint64_t* __restrict__ sets,
                           std::size_t words, std::size_t N, std::size_t K, pair_params p,
                           T* __restrict__ coef, double* __restrict__ row_loss, double* __restrict__ row_self) {
  NMHASH_DYNAMIC_SHARED(T, s_u);
  __shared__ double s_warp[32];
  const std::size_t i = blockIdx.x;
  for (std::size_t k = threadIdx.x; k < K; k += blockDim.x) s_u[k] = u[i * K + k];
  __syncthreads();
  double nu = 0;
  if (p.term == pair_term::contrastive)
    for (std::size_t k = 0; k < K; ++k) nu += static_cast<double>(s_u[k]) * s_u[k];
  // Class ids (words == 0): similar iff equal; label sets: iff they meet.
  const std::int32_t mine = words ? 0 : labels[idx[i]];
  const std::uint64_t* my_set = words ? sets + idx[i] * words : nullptr;
  double loss = 0, self = 0;
  for (std::size_t j = threadIdx.x; j < N; j += blockDim.x) {
    const T* row = bank + j * K;
    T dot = 0;
    for (std::size_t k = 0; k < K; ++k) dot += s_u[k] * row[k];
    bool similar = false;
    if (words) {
      for (std::size_t w = 0; w < words && !similar; ++w) similar = (sets[j * words + w] & my_set[w]) != 0;
    } else {
      similar = labels[j] == mine;
    }
    double c = 0;
    if (p.term == pair_term::logistic) {
      const double t = p.scale * static_cast<double>(dot), w = similar ? p.w_similar : p.w_dissimilar;
      const double e = exp(-fabs(t));
      loss += w * (log1p(e) + (t > 0 ? t : 0.0) - (similar ? t : 0.0));
      const double sigmoid = t >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      c = w * (sigmoid - (similar ? 1.0 : 0.0)) * p.scale;
    } else if (p.term == pair_term::eq7) {
      const double r = static_cast<double>(dot) - p.bits * (similar ? 1.0 : -1.0);
      loss += r * r;
      c = 2 * r;
    } else {
      double nb = 0;
      for (std::size_t k = 0; k < K; ++k) nb += static_cast<double>(row[k]) * row[k];
      const double d = nu + nb - 2 * static_cast<double>(dot);
      // dL/dd, and dd/du_i = 2 (u_i - U_j)
      const double dl = similar ? 0.5 : (d < p.margin ? -0.5 : 0.0);
      loss += similar ? 0.5 * d : (d < p.margin ? 0.5 * (p.margin - d) : 0.0);
      c = -2 * dl;
      self += 2 * dl;
    }
    coef[i * N + j] = static_cast<T>(c);
  }
  const double total_loss = block_sum(loss, s_warp);
  if (threadIdx.x == 0) row_loss[i] = total_loss;
  const double total_self = block_sum(self, s_warp);
  if (threadIdx.x == 0) row_self[i] = total_self;
}

template <class T>
__global__ void pair_gradient(const T* __restrict__ u, const T* __restrict__ bank, const T* __restrict__ coef,
                              const double* __restrict__ row_self, std::size_t N, std::size_t K, double inv_pairs,
                              quant_params q, T* __restrict__ du, double* __restrict__ row_quant) {
  __shared__ double s_warp[32];
  const std::size_t i = blockIdx.x;
  const T* ci = coef + i * N;
  double quant = 0;
  for (std::size_t k = threadIdx.x; k < K; k += blockDim.x) {
    double acc = 0;
    for (std::size_t j = 0; j < N; ++j) acc += static_cast<double>(ci[j]) * bank[j * K + k];
    const double v = u[i * K + k], sv = v >= 0 ? 1.0 : -1.0;
    double g = (acc + row_self[i] * v) * inv_pairs;
    if (q.kind == quantizer::squared_sign) {
      const double d = v - sv;
      quant += d * d;
      g += q.weight * 2 * d;
    } else if (q.kind == quantizer::log_cosh) {
      const double a = fabs(v) - 1;
      quant += log(cosh(a));
      g += q.weight * tanh(a) * sv;
    } else if (q.kind == quantizer::abs_unit) {
      const double a = fabs(v) - 1;
      quant += fabs(a);
      g += q.weight * (a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0)) * sv;
    }
    du[i * K + k] = static_cast<T>(g);
  }
  const double total = block_sum(quant, s_warp);
  if (threadIdx.x == 0) row_quant[i] = total;
}

// bank[idx[b], :] = u[b, :]
template <class T>
__global__ void scatter_rows(const T* __restrict__ u, const std::int64_t* __restrict__ idx, std::size_t rows,
                             std::size_t K, T* __restrict__ bank) {
  for (std::size_t e = grid_thread(); e < rows * K; e += grid_stride())
    bank[static_cast<std::size_t>(idx[e / K]) * K + e % K] = u[e];
}

}  // namespace kernels

// The memory bank on the device: the latest output of every training image
// (rows start at zero) and its labels: a class id, or a multi-hot label set
// as bitset words (similar = at least one shared label).
template <class T>
class device_memory_bank {
 public:
  device_memory_bank(const nmhash::labels& train_labels, std::size_t bits)
      : n_(train_labels.size()), bits_(bits), rows_(train_labels.size() * bits), host_labels_(train_labels) {
    require(bits >= 1, "device_memory_bank: code length must be positive");
    if (train_labels.is_multi()) {
      words_ = train_labels.words();
      sets_ = device_buffer<std::uint64_t>(train_labels.sets(), n_ * words_);
    } else {
      ids_.assign(train_labels.ids(), train_labels.ids() + n_);
      labels_ = device_buffer<std::int32_t>(ids_.data(), n_);
      for (std::int32_t c : ids_) ++class_sizes_[c];
    }
    rows_.zero();
  }

  std::size_t size() const { return n_; }
  std::size_t bits() const { return bits_; }
  T* rows() { return rows_.data(); }
  const T* rows() const { return rows_.data(); }
  // Class ids (single-label banks), else null.
  const std::int32_t* labels() const { return words_ ? nullptr : labels_.data(); }
  // Label sets, words() uint64 per image (multi-label banks), else null.
  const std::uint64_t* label_sets() const { return words_ ? sets_.data() : nullptr; }
  std::size_t words() const { return words_; }

  // Training index list of a batch on the device, checked against the bank.
  device_buffer<std::int64_t> upload_indices(const std::vector<std::size_t>& idx, const char* who) const {
    std::vector<std::int64_t> v(idx.size());
    for (std::size_t b = 0; b < idx.size(); ++b) {
      require(idx[b] < n_, who, ": training index ", idx[b], " outside the bank of ", n_);
      v[b] = static_cast<std::int64_t>(idx[b]);
    }
    return device_buffer<std::int64_t>(v.data(), v.size());
  }

  // Stores the device batch outputs u (idx.size() x bits) as the rows of
  // training images idx.
  void update(const T* u, const std::vector<std::size_t>& idx, cudaStream_t stream = nullptr) {
    if (idx.empty()) return;
    const auto d_idx = upload_indices(idx, "device_memory_bank::update");
    const std::size_t total = idx.size() * bits_;
    NMHASH_LAUNCH(kernels::scatter_rows<T>, grid_for(total), elementwise_threads, 0, stream)(
        u, d_idx.data(), idx.size(), bits_, rows_.data());
    check_launch("scatter_rows");
    NMHASH_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  // Pairs of the batch idx with the whole bank whose labels agree.
  double similar_pairs(const std::vector<std::size_t>& idx) const {
    double s = 0;
    if (words_) {
      for (std::size_t i : idx)
        for (std::size_t j = 0; j < n_; ++j) s += host_labels_.share(i, j) ? 1.0 : 0.0;
      return s;
    }
    for (std::size_t i : idx) s += static_cast<double>(class_sizes_.at(ids_.at(i)));
    return s;
  }

  void upload(const T* host) { rows_.copy_from(host, n_ * bits_); }
  void download(T* host) const { rows_.copy_to(host, n_ * bits_); }

 private:
  std::size_t n_, bits_;
  device_buffer<T> rows_;
  device_buffer<std::int32_t> labels_;
  device_buffer<std::uint64_t> sets_;
  std::size_t words_ = 0;
  nmhash::labels host_labels_;
  std::vector<std::int32_t> ids_;
  std::unordered_map<std::int32_t, std::size_t> class_sizes_;
};

// The losses nmhash trains with, by name; the parameters are those of the
// CPU functions (nmhash/loss/*.hpp).
enum class hashing_loss_kind { dpsh, eq7, dhn, hashnet, dsh };

struct hashing_loss_options {
  hashing_loss_kind kind = hashing_loss_kind::dpsh;
  double alpha = 0.1;   // quantization weight of dpsh, dhn (lambda) and dsh
  double eta = 1200;    // eq7's quantization weight
  double hashnet_alpha = 0.1;  // HashNet's sigmoid scale
  double margin = 0;    // dsh; 0 means 2 K
};

template <class T>
class hashing_loss {
 public:
  explicit hashing_loss(hashing_loss_options o) : o_(o) {
    require(o.kind != hashing_loss_kind::hashnet || o.hashnet_alpha > 0, "hashing_loss: HashNet's alpha must be positive, got ",
            o.hashnet_alpha);
  }

  // The loss of the device batch outputs u (idx.size() x K) against the
  // bank; writes dL/du to the device buffer du (same shape).
  double operator()(const T* u, const std::vector<std::size_t>& idx, const device_memory_bank<T>& bank, T* du,
                    cudaStream_t stream = nullptr) {
    const std::size_t B = idx.size(), N = bank.size(), K = bank.bits();
    require(B >= 1, "hashing_loss: empty batch");
    const auto d_idx = bank.upload_indices(idx, "hashing_loss");
    const double pairs = static_cast<double>(B) * static_cast<double>(N), outputs = static_cast<double>(B * K);
    pair_params p;
    quant_params q;
    switch (o_.kind) {
      case hashing_loss_kind::dpsh:
        p.scale = 0.5;
        q = {quantizer::squared_sign, o_.alpha / outputs};
        break;
      case hashing_loss_kind::dhn:
        q = {quantizer::log_cosh, o_.alpha / outputs};
        break;
      case hashing_loss_kind::hashnet: {
        p.scale = o_.hashnet_alpha;
        const double s1 = bank.similar_pairs(idx), s0 = pairs - s1;
        p.w_similar = s1 > 0 ? pairs / s1 : 0.0;
        p.w_dissimilar = s0 > 0 ? pairs / s0 : 0.0;
        break;
      }
      case hashing_loss_kind::eq7:
        p.term = pair_term::eq7;
        p.bits = static_cast<double>(K);
        q = {quantizer::squared_sign, o_.eta / pairs};
        break;
      case hashing_loss_kind::dsh:
        p.term = pair_term::contrastive;
        p.margin = o_.margin > 0 ? o_.margin : 2.0 * static_cast<double>(K);
        q = {quantizer::abs_unit, o_.alpha / outputs};
        break;
    }
    coef_.reserve(B * N);
    sums_.reserve(3 * B);
    double* row_loss = sums_.data();
    double* row_self = row_loss + B;
    double* row_quant = row_self + B;
    NMHASH_LAUNCH(kernels::pair_terms<T>, static_cast<unsigned>(B), pair_threads, K * sizeof(T), stream)(
        u, d_idx.data(), bank.rows(), bank.labels(), bank.label_sets(), bank.words(), N, K, p, coef_.data(), row_loss,
        row_self);
    check_launch("pair_terms");
    const unsigned gt = static_cast<unsigned>(std::min<std::size_t>(256, (K + 31) / 32 * 32));
    NMHASH_LAUNCH(kernels::pair_gradient<T>, static_cast<unsigned>(B), gt, 0, stream)(
        u, bank.rows(), coef_.data(), row_self, N, K, 1.0 / pairs, q, du, row_quant);
    check_launch("pair_gradient");
    std::vector<double> host(3 * B);
    NMHASH_CUDA_CHECK(cudaMemcpyAsync(host.data(), sums_.data(), host.size() * sizeof(double),
                                      cudaMemcpyDeviceToHost, stream));
    NMHASH_CUDA_CHECK(cudaStreamSynchronize(stream));
    double pair_sum = 0, quant_sum = 0;
    for (std::size_t i = 0; i < B; ++i) {
      pair_sum += host[i];
      quant_sum += host[2 * B + i];
    }
    return pair_sum / pairs + q.weight * quant_sum;
  }

  static constexpr unsigned pair_threads = 256;

 private:
  hashing_loss_options o_;
  device_buffer<T> coef_;
  device_buffer<double> sums_;
};

}  // namespace nmhash::gpu
