// Every architecture preset, at 1 and all OpenMP threads: images/s of one
// training step (forward, DPSH loss against a 512-image bank, backward,
// Adam; K = 48) and of encoding (forward in evaluation mode, batch 64).
// The peers, PyTorch from PyPI and ONNX Runtime on the same networks,
// batches and threads, are bench/torch_presets.py; scripts/bench_train.sh
// runs both and prints the table.
//
// Benchmarks are named train/<preset>/<batch>/<threads> and
// encode/<preset>/<batch>/<threads>.
#include <random>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#include <Eigen/Core>

#include "bench_data.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/optim/adam.hpp"

namespace {

constexpr std::size_t kBits = 48, kBank = 512, kEncodeBatch = 64;

// Training batches as the table and docs/performance.md give them.
const std::vector<std::pair<std::string, std::size_t>>& train_batches() {
  static const std::vector<std::pair<std::string, std::size_t>> b = {
      {"lenet", 128}, {"cifar", 128}, {"cnnf", 16},     {"alexnet", 32},
      {"vgg16", 16},  {"resnet18", 32}, {"resnet34", 32}, {"resnet50", 32}};
  return b;
}

void set_threads(int threads) {
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

nmhash::tensor<float> random_input(const nmhash::nn::architecture& a, std::size_t batch) {
  nmhash::tensor<float> x(nmhash::shape4{batch, a.channels, a.height, a.width});
  std::mt19937_64 g(2);
  std::normal_distribution<float> nd;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = nd(g);
  return x;
}

void BM_train(benchmark::State& state, std::string preset, std::size_t batch) {
  const int threads = static_cast<int>(state.range(0));
  set_threads(threads);
  const auto& arch = *nmhash::nn::find_architecture(preset);
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, kBits, batch);
  net.initialize(1);
  net.set_input_gradient(false);  // as PyTorch, whose input needs no gradient
  nmhash::optim::adam<float> opt({{}, {1e-4, 1e-5}});
  std::vector<std::int32_t> ids(kBank);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i % 10);
  nmhash::loss::memory_bank<float> bank(nmhash::labels::single(ids), kBits);
  const nmhash::tensor<float> x = random_input(arch, batch);
  nmhash::tensor<float> du;
  std::vector<std::size_t> idx(batch);
  for (std::size_t i = 0; i < batch; ++i) idx[i] = i % kBank;
  bench::dpsh_train_step(net, bank, opt, x, idx, du);  // warm-up: allocation and first touch
  for (auto _ : state) bench::dpsh_train_step(net, bank, opt, x, idx, du);
  state.counters["threads"] = threads;
  state.counters["images/s"] = benchmark::Counter(
      static_cast<double>(batch) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_encode(benchmark::State& state, std::string preset) {
  const int threads = static_cast<int>(state.range(0));
  set_threads(threads);
  const auto& arch = *nmhash::nn::find_architecture(preset);
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, kBits, kEncodeBatch);
  net.initialize(1);
  net.set_input_gradient(false);
  const nmhash::tensor<float> x = random_input(arch, kEncodeBatch);
  benchmark::DoNotOptimize(net.forward(x, false).data());  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(net.forward(x, false).data());
  state.counters["threads"] = threads;
  state.counters["images/s"] = benchmark::Counter(
      static_cast<double>(kEncodeBatch) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, [] {
    for (const auto& [preset, batch] : train_batches())
      for (int t : bench::thread_counts()) {
        benchmark::RegisterBenchmark(("train/" + preset + "/" + std::to_string(batch)).c_str(), BM_train, preset,
                                     batch)
            ->Arg(t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(2.0);
        benchmark::RegisterBenchmark(("encode/" + preset + "/" + std::to_string(kEncodeBatch)).c_str(), BM_encode,
                                     preset)
            ->Arg(t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(2.0);
      }
  });
}
