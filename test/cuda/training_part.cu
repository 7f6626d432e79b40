// The GPU training path end to end on a device: lenet (with HashNet's
// scaled tanh head) mirrored by gpu::network, one step of forward, loss,
// backward and Adam against the CPU network. Only runs where a CUDA device
// answers.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "device_part.hpp"
#include "nmhash/cuda/loss.cuh"
#include "nmhash/cuda/nn.cuh"
#include "nmhash/cuda/optim.cuh"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/nn/lenet.hpp"
#include "nmhash/optim/adam.hpp"

namespace {

// max |a - b| / max(1e-3, max |b|) over the first n elements.
double gap(const std::vector<float>& a, const float* b, std::size_t n) {
  double g = 0, scale = 1e-3;
  for (std::size_t i = 0; i < n; ++i) {
    g = std::max(g, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return g / scale;
}

std::vector<float> host_copy(const float* d, std::size_t n) {
  std::vector<float> v(n);
  NMHASH_CUDA_CHECK(cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  return v;
}

}  // namespace

std::string run_training_checks() {
  const std::size_t K = 16, B = 8, N = 40;
  nmhash::nn::sequential<float> cpu;
  nmhash::nn::build_lenet<float>(cpu, K, B, 1, [](nmhash::nn::sequential<float>& n) {
    n.add(nmhash::nn::scaled_tanh<float>(1.5));
  });
  cpu.initialize(3);
  cpu.set_input_gradient(false);
  nmhash::gpu::dnn_context ctx;
  nmhash::gpu::network gpu(cpu, ctx);

  std::mt19937_64 g(5);
  std::normal_distribution<float> normal;
  nmhash::tensor<float> x({B, 1, 28, 28});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  std::vector<std::int32_t> ids(N);
  for (auto& v : ids) v = static_cast<std::int32_t>(g() % 3);
  const auto labels = nmhash::labels::single(ids);
  const std::vector<std::size_t> idx{0, 5, 9, 13, 21, 30, 33, 39};

  const auto& u = cpu.forward(x, true);
  nmhash::gpu::device_buffer<float> dx(x.data(), x.size());
  const float* du_dev = gpu.forward(dx.data(), B);
  if (gpu.output_shape() != u.shape()) return "gpu::network output shape " + gpu.output_shape().str();
  const double out_gap = gap(host_copy(du_dev, u.size()), u.data(), u.size());
  if (out_gap > 1e-4) return "gpu::network forward differs from the CPU network by " + std::to_string(out_gap);

  nmhash::loss::memory_bank<float> bank(labels, K);
  bank.update(u, idx);
  nmhash::tensor<float> grad;
  const double cpu_loss = nmhash::loss::dpsh(u, idx, bank, 0.1, grad);
  nmhash::gpu::device_memory_bank<float> dbank(labels, K);
  dbank.update(du_dev, idx);
  nmhash::gpu::hashing_loss<float> loss({});
  nmhash::gpu::device_buffer<float> dgrad(u.size());
  const double gpu_loss = loss(du_dev, idx, dbank, dgrad.data());
  if (std::abs(gpu_loss - cpu_loss) > 1e-4 * std::abs(cpu_loss))
    return "dpsh on the device " + std::to_string(gpu_loss) + ", on the CPU " + std::to_string(cpu_loss);

  cpu.zero_grad();
  cpu.backward(grad);
  gpu.zero_grad();
  gpu.backward(dgrad.data());
  const std::size_t P = cpu.parameters().size();
  const auto gg = host_copy(gpu.gradients(), P);
  for (const auto& r : cpu.ranges()) {
    std::vector<float> part(gg.begin() + static_cast<long>(r.offset), gg.begin() + static_cast<long>(r.offset + r.count));
    const double d = gap(part, cpu.gradients().data() + r.offset, r.count);
    if (d > 1e-3)
      return "parameter gradients at offset " + std::to_string(r.offset) + " differ by " + std::to_string(d);
  }

  const nmhash::optim::group_table groups{{{1e-3, 1e-5}, {1e-2, 0.0}}, {}};
  nmhash::optim::adam<float> cpu_opt(groups);
  nmhash::gpu::adam<float> gpu_opt(groups);
  cpu_opt.step(cpu.parameters(), cpu.gradients(), cpu.ranges());
  gpu_opt.step(gpu.parameters(), gpu.gradients(), P, gpu.ranges());
  std::vector<float> before(cpu.parameters().begin(), cpu.parameters().end());
  gpu.download_parameters();
  const double pg = gap(std::vector<float>(cpu.parameters().begin(), cpu.parameters().end()), before.data(), P);
  if (pg > 1e-4) return "parameters after one Adam step differ by " + std::to_string(pg);

  // A smaller batch re-plans the convolutions.
  const float* small = gpu.forward(dx.data(), 3);
  nmhash::tensor<float> x3({3, 1, 28, 28});
  std::copy(x.data(), x.data() + x3.size(), x3.data());
  const auto& u3 = cpu.forward(x3, false);
  const double small_gap = gap(host_copy(small, u3.size()), u3.data(), u3.size());
  if (small_gap > 1e-4) return "gpu::network on a batch of 3 differs by " + std::to_string(small_gap);
  return {};
}
