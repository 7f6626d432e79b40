// Classification loss on the network's outputs, for pretraining a backbone
// on the training split before hashing (the NMLayer paper starts from a
// classification-pretrained CNN-F): the outputs u (B x C) are class logits.
//   single-label: L = mean_b [ logsumexp(u_b) - u_{b, y_b} ]      (softmax cross-entropy)
//   multi-label:  L = mean_{b,c} [ log(1 + exp(u_bc)) - t_bc u_bc ] (sigmoid cross-entropy)
// C is the number of classes (single-label) or labels (multi-label); the
// labels are the memory bank's, the bank's rows are not used.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/loss/memory_bank.hpp"

namespace nmhash::loss {

// Returns L and writes dL/du into du (shape of u). idx: the training indices
// of the batch rows; C is the bank's width.
template <class T>
double classify(const tensor<T>& u, const std::vector<std::size_t>& idx, const memory_bank<T>& bank, tensor<T>& du) {
  bank.check_batch(u, idx, "classify");
  const auto& lab = bank.labels();
  const std::size_t B = idx.size(), C = bank.bits();
  require(!lab.is_multi() || lab.num_labels() == C, "classify: ", C, " outputs for ", lab.num_labels(),
          " labels (the output count must equal the number of labels)");
  du.resize(u.shape());
  if (B == 0) return 0.0;
  double loss = 0;
  const double inv_b = 1.0 / static_cast<double>(B);
  for (std::size_t b = 0; b < B; ++b) {
    const T* row = u.data() + b * C;
    T* d = du.data() + b * C;
    if (lab.is_multi()) {
      for (std::size_t c = 0; c < C; ++c) {
        const double x = row[c], t = lab.has(idx[b], c) ? 1.0 : 0.0;
        // log(1 + e^x) - t x, computed without overflow.
        loss += std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))) - t * x;
        d[c] = static_cast<T>((1.0 / (1.0 + std::exp(-x)) - t) * inv_b / static_cast<double>(C));
      }
    } else {
      const std::int32_t y = lab.ids()[idx[b]];
      require(y >= 0 && static_cast<std::size_t>(y) < C, "classify: training image ", idx[b], " has class ", y,
              ", outside the ", C, " outputs (the output count must equal the number of classes)");
      double top = row[0];
      for (std::size_t c = 1; c < C; ++c) top = std::max(top, static_cast<double>(row[c]));
      double sum = 0;
      for (std::size_t c = 0; c < C; ++c) sum += std::exp(row[c] - top);
      loss += top + std::log(sum) - row[y];
      for (std::size_t c = 0; c < C; ++c) {
        const double p = std::exp(row[c] - top) / sum;
        d[c] = static_cast<T>((p - (static_cast<std::size_t>(y) == c ? 1.0 : 0.0)) * inv_b);
      }
    }
  }
  return lab.is_multi() ? loss * inv_b / static_cast<double>(C) : loss * inv_b;
}

}  // namespace nmhash::loss
