// The GPU training path end to end on a device: lenet (with HashNet's
// scaled tanh head) mirrored by gpu::network, one step of forward, loss,
// backward and Adam against the CPU network; and a small ResNet (a stem
// convolution without bias, batch norm, padded max pooling, basic and
// bottleneck blocks with and without the downsample path, adaptive average
// pooling) in training and evaluation mode, its gradients and its running
// statistics; and local response norm with dropout, whose masks the device
// draws from the host layer. Only runs where a CUDA device answers.
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
#include "nmhash/nn/adaptive_avg_pool2d.hpp"
#include "nmhash/nn/basic_block.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/local_response_norm.hpp"
#include "nmhash/nn/batch_norm2d.hpp"
#include "nmhash/nn/lenet.hpp"
#include "nmhash/nn/serialize.hpp"
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

// Backward through both networks (the CPU one from dy, the device one from
// its copy ddy); the first parameter range whose gradients differ by more
// than 1e-3 of their scale, named (empty if none).
std::string backward_gap(nmhash::nn::sequential<float>& cpu, nmhash::gpu::network& gpu,
                         const nmhash::tensor<float>& dy, const float* ddy, const std::string& what) {
  cpu.zero_grad();
  cpu.backward(dy);
  gpu.zero_grad();
  gpu.backward(ddy);
  const std::size_t P = cpu.parameters().size();
  const auto gg = host_copy(gpu.gradients(), P);
  for (const auto& r : cpu.ranges()) {
    std::vector<float> part(gg.begin() + static_cast<long>(r.offset), gg.begin() + static_cast<long>(r.offset + r.count));
    const double d = gap(part, cpu.gradients().data() + r.offset, r.count);
    if (d > 1e-3)
      return what + "parameter gradients at offset " + std::to_string(r.offset) + " differ by " + std::to_string(d);
  }
  return {};
}

// The small ResNet against the CPU network: forward and backward in
// training mode, the running statistics after it, evaluation mode.
std::string resnet_checks() {
  using namespace nmhash::nn;
  const std::size_t B = 4, K = 12;
  sequential<float> cpu;
  cpu.add(conv2d<float>(3, 8, conv2d_options{7, 7, 2, 3, false}));
  cpu.add(batch_norm2d<float>(8));
  cpu.add(relu<float>());
  cpu.add(max_pool2d<float>(3, 2, 1));
  cpu.add(basic_block<float>(8, 8));
  cpu.add(basic_block<float>(8, 16, 2));
  cpu.add(bottleneck_block<float>(16, 4, 2));
  cpu.add(adaptive_avg_pool2d<float>(1, 1));
  cpu.add(flatten<float>());
  cpu.add(linear<float>(16, K));
  cpu.build(nmhash::shape4{B, 3, 32, 32});
  cpu.initialize(4);
  cpu.set_input_gradient(false);
  nmhash::gpu::dnn_context ctx;
  nmhash::gpu::network gpu(cpu, ctx);
  std::mt19937_64 g(6);
  std::normal_distribution<float> normal;
  nmhash::tensor<float> x({B, 3, 32, 32});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  nmhash::gpu::device_buffer<float> dx(x.data(), x.size());
  const auto& u = cpu.forward(x, true);
  const float* du = gpu.forward(dx.data(), B, true);
  if (gpu.output_shape() != u.shape()) return "resnet: output shape " + gpu.output_shape().str();
  const double out_gap = gap(host_copy(du, u.size()), u.data(), u.size());
  if (out_gap > 1e-4) return "resnet: training-mode forward differs by " + std::to_string(out_gap);
  nmhash::tensor<float> dy(u.shape());
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = normal(g);
  nmhash::gpu::device_buffer<float> ddy(dy.data(), dy.size());
  if (auto e = backward_gap(cpu, gpu, dy, ddy.data(), "resnet: "); !e.empty()) return e;
  // The running statistics the device updated, against the CPU's.
  std::vector<std::vector<float>> cpu_stats;
  for_each_tensor(cpu, cpu.parameters().data(),
                  [&](const std::string&, const std::vector<std::size_t>& shape, float* p, bool buffer) {
                    if (buffer) cpu_stats.emplace_back(p, p + shape[0]);
                  });
  gpu.download_parameters();
  std::size_t k = 0;
  std::string bad;
  for_each_tensor(cpu, cpu.parameters().data(),
                  [&](const std::string& name, const std::vector<std::size_t>& shape, float* p, bool buffer) {
                    if (!buffer || !bad.empty()) return;
                    const double d = gap(cpu_stats[k++], p, shape[0]);
                    if (d > 1e-4) bad = "resnet: running statistics " + name + " differ by " + std::to_string(d);
                  });
  if (!bad.empty()) return bad;
  const auto& e = cpu.forward(x, false);
  const float* de = gpu.forward(dx.data(), B, false);
  const double eval_gap = gap(host_copy(de, e.size()), e.data(), e.size());
  if (eval_gap > 1e-4) return "resnet: evaluation-mode forward differs by " + std::to_string(eval_gap);
  return {};
}

// Local response norm and dropout (CNN-F's and AlexNet's layers): the
// device network mirrors one of two equal CPU networks, so both draw the
// same dropout masks.
std::string lrn_dropout_checks() {
  using namespace nmhash::nn;
  const std::size_t B = 4, K = 10;
  const auto make = [&](sequential<float>& net) {
    net.add(conv2d<float>(3, 16, conv2d_options{3, 3, 1, 1}));
    net.add(relu<float>());
    net.add(local_response_norm<float>(5, 1e-4, 0.75, 2.0));
    net.add(max_pool2d<float>(3, 2));
    net.add(flatten<float>());
    net.add(dropout<float>(0.5, 17));
    net.add(linear<float>(16 * 7 * 7, K));
    net.build(nmhash::shape4{B, 3, 16, 16});
    net.initialize(8);
    net.set_input_gradient(false);
  };
  sequential<float> host, ref;
  make(host);
  make(ref);
  nmhash::gpu::dnn_context ctx;
  nmhash::gpu::network gpu(host, ctx);
  std::mt19937_64 g(9);
  std::normal_distribution<float> normal;
  nmhash::tensor<float> x({B, 3, 16, 16});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  nmhash::gpu::device_buffer<float> dx(x.data(), x.size());
  for (const bool training : {true, false}) {
    const auto& u = ref.forward(x, training);
    const float* du = gpu.forward(dx.data(), B, training);
    const double d = gap(host_copy(du, u.size()), u.data(), u.size());
    if (d > 1e-4) return std::string("lrn and dropout: ") + (training ? "training" : "evaluation") +
                         "-mode forward differs by " + std::to_string(d);
    if (!training) break;
    nmhash::tensor<float> dy(u.shape());
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = normal(g);
    nmhash::gpu::device_buffer<float> ddy(dy.data(), dy.size());
    if (auto e = backward_gap(ref, gpu, dy, ddy.data(), "lrn and dropout: "); !e.empty()) return e;
  }
  return {};
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

  if (auto e = backward_gap(cpu, gpu, grad, dgrad.data(), ""); !e.empty()) return e;
  const std::size_t P = cpu.parameters().size();

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
  if (auto e = resnet_checks(); !e.empty()) return e;
  return lrn_dropout_checks();
}
