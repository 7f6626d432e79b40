// The CUDA implementation of a training run's device step
// (nmhash/train/device_step.hpp): gpu::network for the backbone, the device
// memory bank and loss, and the device optimizer; with several ranks, one
// GPU per rank with the batch's outputs gathered and the gradients summed
// in rank order over NCCL (nmhash/cuda/nccl.cuh, where nmhash::nccl is
// linked), so that every rank holds the same bank, loss and parameters, as
// on the CPU.
//
// Include this header in one .cu file of a program (compiled by nvcc,
// linked with nmhash::cuda): it registers the implementation with
// nmhash::train::cuda_step_factory(), which make_device_step() calls.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/cuda/loss.cuh"
#include "nmhash/cuda/nn.cuh"
#include "nmhash/cuda/optim.cuh"
#include "nmhash/train/device_step.hpp"
#if NMHASH_HAS_NCCL
#include "nmhash/cuda/nccl.cuh"
#endif

namespace nmhash::gpu {
namespace detail {

using any_optimizer = std::variant<adam<float>, sgd<float>, rmsprop<float>>;

inline hashing_loss_options step_loss_options(const train::device_step_settings& s) {
  hashing_loss_options o;
  o.kind = s.loss == "dpsh"      ? hashing_loss_kind::dpsh
           : s.loss == "eq7"     ? hashing_loss_kind::eq7
           : s.loss == "dhn"     ? hashing_loss_kind::dhn
           : s.loss == "hashnet" ? hashing_loss_kind::hashnet
           : s.loss == "dsh"     ? hashing_loss_kind::dsh
                                 : (nmhash::detail::fail("--device cuda: no device loss '", s.loss, "'"), hashing_loss_kind::dpsh);
  o.alpha = s.loss_settings.alpha;
  o.eta = s.loss_settings.eta;
  o.hashnet_alpha = s.loss_settings.hashnet_alpha;
  o.margin = s.loss_settings.margin;
  return o;
}

inline any_optimizer step_optimizer(const train::device_step_settings& s) {
  switch (s.optimizer) {
    case optim::optimizer_kind::adam: return adam<float>(s.groups);
    case optim::optimizer_kind::sgd: return sgd<float>(s.momentum, s.groups);
    case optim::optimizer_kind::rmsprop: return rmsprop<float>(s.groups);
  }
  nmhash::detail::fail("--device cuda: unknown optimizer");
}

// Makes the device of this process current (the node-local rank's, or the
// only one a launcher left visible to it through CUDA_VISIBLE_DEVICES);
// its name.
inline std::string use_device(int local_rank) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    nmhash::detail::fail("--device cuda: no CUDA device is available (cudaGetDeviceCount: ", cudaGetErrorName(e),
                         ": ", cudaGetErrorString(e), ")");
  require(count > 0, "--device cuda: no CUDA device is available (cudaGetDeviceCount found none)");
  const int index = count == 1 && std::getenv("CUDA_VISIBLE_DEVICES") != nullptr ? 0 : local_rank;
  require(index < count, "--device cuda under mpirun: this rank is number ", index, " on its node, which has ", count,
          " CUDA device", count == 1 ? "" : "s", " (one GPU per rank: start at most ", count, " ranks per node)");
  NMHASH_CUDA_CHECK(cudaSetDevice(index));
  cudaDeviceProp prop{};
  NMHASH_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

class step_stream {
 public:
  explicit step_stream(bool own) {
    if (own) NMHASH_CUDA_CHECK(cudaStreamCreate(&s_));
  }
  step_stream(const step_stream&) = delete;
  step_stream& operator=(const step_stream&) = delete;
  ~step_stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class cuda_device_step final : public train::device_step {
 public:
  cuda_device_step(nn::sequential<float>& net, const loss::memory_bank<float>& bank,
                   const train::device_step_settings& s, const train::optimizer_state& state, std::size_t steps,
                   const train::device_ranks& rk)
      : name_(use_device(rk.ranks > 1 ? rk.local_rank : 0)), stream_(rk.ranks > 1), ctx_(stream_.get()),
        net_(net, ctx_), bank_(bank.labels(), bank.bits()), loss_(step_loss_options(s)), opt_(step_optimizer(s)),
        rank_(rk.rank), ranks_(rk.ranks), width_(bank.bits()) {
    if (ranks_ > 1) join(rk);
    bank_.upload(bank.rows());
    for_each_state_pair(state, [](aligned_vector<float>& host, device_buffer<float>& dev) {
      if (!host.empty()) dev = device_buffer<float>(host.data(), host.size());
    });
    if (auto* a = std::get_if<adam<float>>(&opt_)) a->set_steps(steps);
  }

  std::string device() const override { return name_; }

  double step(const tensor<float>& x, const std::vector<std::size_t>& idx) override {
    if (ranks_ > 1) return parallel_step(x, idx);
    const std::size_t n = x.shape()[0];
    require(n == idx.size(), "device_step: ", n, " images but ", idx.size(), " training indices");
    const float* u = forward(x);
    bank_.update(u, idx, ctx_.stream());
    du_.reserve(net_.output_shape().size());
    const double l = loss_(u, idx, bank_, du_.data(), ctx_.stream());
    net_.zero_grad();
    net_.backward(du_.data());
    std::visit([&](auto& o) { o.step(net_.parameters(), net_.gradients(), net_.parameter_count(), net_.ranges(), ctx_.stream()); },
               opt_);
    return l;
  }

  void infer(const tensor<float>& x, tensor<float>& y) override {
    const float* out = forward(x, false);
    y.resize(net_.output_shape());
    NMHASH_CUDA_CHECK(cudaMemcpy(y.data(), out, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  }

  void download(loss::memory_bank<float>& bank, const train::optimizer_state& state, std::size_t& steps) override {
    net_.download_parameters();
    bank_.download(bank.rows());
    for_each_state_pair(state, [](aligned_vector<float>& host, device_buffer<float>& dev) {
      host.resize(dev.size());
      dev.copy_to(host.data());
    });
    const auto* a = std::get_if<adam<float>>(&opt_);
    steps = a ? a->steps() : 0;
  }

 private:
  // Uploads the host batch x and runs the network on it (training mode:
  // batch statistics).
  const float* forward(const tensor<float>& x, bool training = true) {
    x_.reserve(x.size());
    x_.copy_from(x.data(), x.size());
    return net_.forward(x_.data(), x.shape()[0], training);
  }

  // f(host buffer, device buffer) for each optimizer state buffer the host
  // and the device optimizer both name.
  template <class F>
  void for_each_state_pair(const train::optimizer_state& state, F&& f) {
    std::visit(
        [&](auto& o) {
          for (auto& [name, dev] : o.state())
            for (const auto& [host_name, host] : state)
              if (host_name == name) f(*host, *dev);
        },
        opt_);
  }

#if NMHASH_HAS_NCCL
  // Joins the ranks' NCCL communicator (collective).
  void join(const train::device_ranks& rk) {
    std::string id(sizeof(ncclUniqueId), '\0');
    if (rk.rank == 0) {
      const ncclUniqueId u = nccl_communicator::unique_id();
      std::memcpy(id.data(), &u, sizeof u);
    }
    rk.share_from_root(id);
    require(id.size() == sizeof(ncclUniqueId), "--device cuda under mpirun: the NCCL id from rank 0 holds ",
                    id.size(), " bytes, expected ", sizeof(ncclUniqueId));
    ncclUniqueId u;
    std::memcpy(&u, id.data(), sizeof u);
    comm_ = std::make_unique<nccl_communicator>(u, rk.ranks, rk.rank);
  }

  // This rank's rows through the network, every rank's outputs gathered,
  // then the bank, the loss and its gradient of the whole batch on every
  // rank (the same numbers everywhere), back-propagation of this rank's
  // rows and the gradients summed in rank order before the step.
  double parallel_step(const tensor<float>& x, const std::vector<std::size_t>& idx) {
    const std::size_t n = idx.size();
    const std::size_t lo = split_begin(n, ranks_, rank_), hi = split_begin(n, ranks_, rank_ + 1);
    const float* local = nullptr;
    if (hi > lo) {
      require(x.shape()[0] == hi - lo, "device_step: rank ", rank_, " holds rows ", lo, " to ", hi,
                      " of the batch and was given ", x.shape()[0], " images");
      local = forward(x);
    }
    u_.reserve(n * width_);
    gather_rows(*comm_, local, u_.data(), n, width_, ctx_.stream());
    bank_.update(u_.data(), idx, ctx_.stream());
    du_.reserve(n * width_);
    const double l = loss_(u_.data(), idx, bank_, du_.data(), ctx_.stream());
    net_.zero_grad();
    if (hi > lo) net_.backward(du_.data() + lo * width_);
    sum_(*comm_, net_.gradients(), net_.parameter_count(), ctx_.stream());
    std::visit([&](auto& o) { o.step(net_.parameters(), net_.gradients(), net_.parameter_count(), net_.ranges(), ctx_.stream()); },
               opt_);
    comm_->check();
    return l;
  }
#else
  [[noreturn]] void join(const train::device_ranks&) {
    nmhash::detail::fail("--device cuda under mpirun: this program was built without NCCL (CMake found no "
                         "nccl.h and libnccl beside the CUDA toolkit)");
  }
  [[noreturn]] double parallel_step(const tensor<float>&, const std::vector<std::size_t>&) { join({}); }
#endif

  std::string name_;
  step_stream stream_;
  dnn_context ctx_;
  network net_;
  device_memory_bank<float> bank_;
  hashing_loss<float> loss_;
  any_optimizer opt_;
  device_buffer<float> x_, u_, du_;
  int rank_, ranks_;
  std::size_t width_;
#if NMHASH_HAS_NCCL
  // sum_ before comm_: on an exception the communicator is aborted first,
  // stopping NCCL's kernels, before any device memory is freed (cudaFree
  // waits for the device).
  rank_order_sum<float> sum_;
  std::unique_ptr<nccl_communicator> comm_;
#endif
};

}  // namespace detail

// Registers the implementation (once per program, whichever .cu includes this).
inline const bool device_step_registered = [] {
  train::cuda_step_factory() = [](nn::sequential<float>& net, const loss::memory_bank<float>& bank,
                                  const train::device_step_settings& settings, const train::optimizer_state& state,
                                  std::size_t steps, const train::device_ranks& ranks) -> std::unique_ptr<train::device_step> {
    return std::make_unique<detail::cuda_device_step>(net, bank, settings, state, steps, ranks);
  };
  return true;
}();

}  // namespace nmhash::gpu
