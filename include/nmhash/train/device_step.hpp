// The device-step interface of a training run (run.hpp, device cuda): the
// training step and the encoder on an accelerator, behind an interface the
// host half calls without CUDA headers. The host network, memory bank and
// optimizer state stay the reference copies: the device takes them at the
// start and gives them back before every checkpoint, so checkpoints and
// weights are the CPU path's, and either device resumes the other's runs.
//
// The CUDA implementation is nmhash/cuda/train/device_step.cuh: a program
// that includes it in one of its .cu files (compiled by nvcc, linked with
// nmhash::cuda) registers it here; make_device_step() of any other program
// says that it was built without CUDA.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/tensor.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/loss/registry.hpp"
#include "nmhash/nn/sequential.hpp"
#include "nmhash/optim/groups.hpp"

namespace nmhash::train {

// The host optimizer's state buffers, by name.
using optimizer_state = std::vector<std::pair<std::string, aligned_vector<float>*>>;

struct device_step_settings {
  std::string loss;  // a name of loss::loss_names()
  loss::loss_settings loss_settings;
  optim::optimizer_kind optimizer = optim::optimizer_kind::adam;
  double momentum = 0;  // sgd
  optim::group_table groups;
};

// Data parallelism between devices: rank `rank` of `ranks` takes device
// local_rank of its node and joins a communicator whose id rank 0 makes and
// share_from_root hands to every rank.
struct device_ranks {
  int rank = 0, ranks = 1, local_rank = 0;
  std::function<void(std::string&)> share_from_root;
};

class device_step {
 public:
  virtual ~device_step() = default;
  // The device's name, for the log.
  virtual std::string device() const = 0;
  // Forward, memory bank update, loss, backward and optimizer step on the
  // batch x of training images idx; returns the loss. Data parallel: x is
  // this rank's rows of the batch (split_begin), idx the whole batch.
  virtual double step(const tensor<float>& x, const std::vector<std::size_t>& idx) = 0;
  // The network's outputs for x, into host memory.
  virtual void infer(const tensor<float>& x, tensor<float>& y) = 0;
  // Copies the parameters (into the host network), the memory bank, the
  // optimizer state and its step count back to the host.
  virtual void download(loss::memory_bank<float>& bank, const optimizer_state& state, std::size_t& steps) = 0;
};

using device_step_factory = std::function<std::unique_ptr<device_step>(
    nn::sequential<float>& net, const loss::memory_bank<float>& bank, const device_step_settings& settings,
    const optimizer_state& state, std::size_t steps, const device_ranks& ranks)>;

// The CUDA implementation, where this program has one (registered by
// nmhash/cuda/train/device_step.cuh).
inline device_step_factory& cuda_step_factory() {
  static device_step_factory f;
  return f;
}

// Mirrors net, bank and the optimizer state (with its step count) on the
// first CUDA device (data parallel: the node's local_rank-th). Throws
// nmhash::error when this program has no CUDA implementation or no device
// answers.
inline std::unique_ptr<device_step> make_device_step(nn::sequential<float>& net, const loss::memory_bank<float>& bank,
                                                     const device_step_settings& settings, const optimizer_state& state,
                                                     std::size_t steps, const device_ranks& ranks = {}) {
  require(static_cast<bool>(cuda_step_factory()),
          "--device cuda: this program was built without CUDA (CMake found no nvcc, cuBLAS or cuDNN); rebuild on a "
          "machine with the CUDA toolkit and cuDNN");
  return cuda_step_factory()(net, bank, settings, state, steps, ranks);
}

}  // namespace nmhash::train
