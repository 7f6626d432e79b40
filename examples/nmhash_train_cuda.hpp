// nmhash_train's device path (--device cuda): the training step and the
// encoder on a CUDA device behind an interface that the host half calls
// without CUDA headers. The host network, memory bank and optimizer state
// stay the reference copies: the device takes them at the start and gives
// them back before every checkpoint, so checkpoints and weights are the
// CPU path's, and either device resumes the other's runs.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/tensor.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/nn/sequential.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash_train {

using optimizer_state = std::vector<std::pair<std::string, nmhash::aligned_vector<float>*>>;

struct cuda_settings {
  std::string loss, optimizer;
  double alpha = 0, eta = 0, hashnet_alpha = 0, margin = 0, momentum = 0;
  nmhash::optim::group_table groups;
};

// Data parallelism between GPUs (nmhash_train under mpirun): rank `rank` of
// `ranks` takes GPU local_rank of its node and joins an NCCL communicator
// whose id rank 0 makes and share_from_root hands to every rank.
struct cuda_ranks {
  int rank = 0, ranks = 1, local_rank = 0;
  std::function<void(std::string&)> share_from_root;
};

class cuda_trainer {
 public:
  virtual ~cuda_trainer() = default;
  // The device's name, for the log.
  virtual std::string device() const = 0;
  // Forward, memory bank update, loss, backward and optimizer step on the
  // batch x of training images idx; returns the loss. Data parallel: x is
  // this rank's rows of the batch (split_begin), idx the whole batch.
  virtual double step(const nmhash::tensor<float>& x, const std::vector<std::size_t>& idx) = 0;
  // The network's outputs for x, into host memory.
  virtual void infer(const nmhash::tensor<float>& x, nmhash::tensor<float>& y) = 0;
  // Copies the parameters (into the host network), the memory bank, the
  // optimizer state and its step count back to the host.
  virtual void download(nmhash::loss::memory_bank<float>& bank, const optimizer_state& state, std::size_t& steps) = 0;
};

// Mirrors net, bank and the optimizer state (with its step count) on the
// first CUDA device (data parallel: the node's local_rank-th). Throws
// nmhash::error when this build has no CUDA (or, for several ranks, no
// NCCL) or no device answers.
std::unique_ptr<cuda_trainer> make_cuda_trainer(nmhash::nn::sequential<float>& net,
                                                const nmhash::loss::memory_bank<float>& bank,
                                                const cuda_settings& settings, const optimizer_state& state,
                                                std::size_t steps, const cuda_ranks& ranks = {});

}  // namespace nmhash_train
