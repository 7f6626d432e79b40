// The device half of nmhash_train (see nmhash_train_cuda.hpp): gpu::network
// for lenet, the device memory bank and loss, and the device optimizer.
#include "nmhash_train_cuda.hpp"

#include <variant>

#include "nmhash/cuda/loss.cuh"
#include "nmhash/cuda/nn.cuh"
#include "nmhash/cuda/optim.cuh"

namespace nmhash_train {
namespace {

namespace gpu = nmhash::gpu;
using any_optimizer = std::variant<gpu::adam<float>, gpu::sgd<float>, gpu::rmsprop<float>>;

gpu::hashing_loss_options loss_options(const cuda_settings& s) {
  gpu::hashing_loss_options o;
  o.kind = s.loss == "dpsh"      ? gpu::hashing_loss_kind::dpsh
           : s.loss == "eq7"     ? gpu::hashing_loss_kind::eq7
           : s.loss == "dhn"     ? gpu::hashing_loss_kind::dhn
           : s.loss == "hashnet" ? gpu::hashing_loss_kind::hashnet
           : s.loss == "dsh"     ? gpu::hashing_loss_kind::dsh
                                 : (nmhash::detail::fail("--device cuda: unknown loss ", s.loss), gpu::hashing_loss_kind::dpsh);
  o.alpha = s.alpha;
  o.eta = s.eta;
  o.hashnet_alpha = s.hashnet_alpha;
  o.margin = s.margin;
  return o;
}

any_optimizer make_optimizer(const cuda_settings& s) {
  if (s.optimizer == "adam") return gpu::adam<float>(s.groups);
  if (s.optimizer == "sgd") return gpu::sgd<float>(s.momentum, s.groups);
  if (s.optimizer == "rmsprop") return gpu::rmsprop<float>(s.groups);
  nmhash::detail::fail("--device cuda: unknown optimizer ", s.optimizer);
}

std::string first_device() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    nmhash::detail::fail("--device cuda: no CUDA device is available (cudaGetDeviceCount: ", cudaGetErrorName(e),
                         ": ", cudaGetErrorString(e), ")");
  nmhash::require(count > 0, "--device cuda: no CUDA device is available (cudaGetDeviceCount found none)");
  NMHASH_CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp prop{};
  NMHASH_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  return prop.name;
}

class device_trainer final : public cuda_trainer {
 public:
  device_trainer(nmhash::nn::sequential<float>& net, const nmhash::loss::memory_bank<float>& bank,
                 const cuda_settings& s, const optimizer_state& state, std::size_t steps)
      : name_(first_device()), net_(net, ctx_), bank_(bank.labels(), bank.bits()), loss_(loss_options(s)),
        opt_(make_optimizer(s)) {
    bank_.upload(bank.rows());
    for_each_state_pair(state, [](nmhash::aligned_vector<float>& host, gpu::device_buffer<float>& dev) {
      if (!host.empty()) dev = gpu::device_buffer<float>(host.data(), host.size());
    });
    if (auto* adam = std::get_if<gpu::adam<float>>(&opt_)) adam->set_steps(steps);
  }

  std::string device() const override { return name_; }

  double step(const nmhash::tensor<float>& x, const std::vector<std::size_t>& idx) override {
    const std::size_t n = x.shape()[0];
    nmhash::require(n == idx.size(), "cuda_trainer: ", n, " images but ", idx.size(), " training indices");
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

  void infer(const nmhash::tensor<float>& x, nmhash::tensor<float>& y) override {
    const float* out = forward(x);
    y.resize(net_.output_shape());
    NMHASH_CUDA_CHECK(cudaMemcpy(y.data(), out, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  }

  void download(nmhash::loss::memory_bank<float>& bank, const optimizer_state& state, std::size_t& steps) override {
    net_.download_parameters();
    bank_.download(bank.rows());
    for_each_state_pair(state, [](nmhash::aligned_vector<float>& host, gpu::device_buffer<float>& dev) {
      host.resize(dev.size());
      dev.copy_to(host.data());
    });
    const auto* adam = std::get_if<gpu::adam<float>>(&opt_);
    steps = adam ? adam->steps() : 0;
  }

 private:
  // Uploads the host batch x and runs the network on it.
  const float* forward(const nmhash::tensor<float>& x) {
    x_.reserve(x.size());
    x_.copy_from(x.data(), x.size());
    return net_.forward(x_.data(), x.shape()[0]);
  }

  // f(host buffer, device buffer) for each optimizer state buffer the host
  // and the device optimizer both name.
  template <class F>
  void for_each_state_pair(const optimizer_state& state, F&& f) {
    std::visit(
        [&](auto& o) {
          for (auto& [name, dev] : o.state())
            for (const auto& [host_name, host] : state)
              if (host_name == name) f(*host, *dev);
        },
        opt_);
  }

  std::string name_;
  gpu::dnn_context ctx_;
  gpu::network net_;
  gpu::device_memory_bank<float> bank_;
  gpu::hashing_loss<float> loss_;
  any_optimizer opt_;
  gpu::device_buffer<float> x_, du_;
};

}  // namespace

std::unique_ptr<cuda_trainer> make_cuda_trainer(nmhash::nn::sequential<float>& net,
                                                const nmhash::loss::memory_bank<float>& bank,
                                                const cuda_settings& settings, const optimizer_state& state,
                                                std::size_t steps) {
  return std::make_unique<device_trainer>(net, bank, settings, state, steps);
}

}  // namespace nmhash_train
