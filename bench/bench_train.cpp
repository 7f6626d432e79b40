// Training throughput of the fmnist-dpsh `lenet` (batch 128, K = 48) with
// the DPSH loss against a 5,000-image memory bank and Adam: one iteration
// is forward, loss, backward and the optimizer step, as in nmhash_train.
// The peer, PyTorch on the same network, loss, batch and threads, is
// bench/torch_lenet.py; scripts/bench_train.sh runs both in one go.
#include <random>

#if defined(_OPENMP)
#include <omp.h>
#endif
#include <Eigen/Core>

#include "bench_data.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/nn/lenet.hpp"
#include "nmhash/optim/adam.hpp"

namespace {

constexpr std::size_t kBatch = 128, kBits = 48, kBank = 5000;

void BM_train_step_lenet_dpsh(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_lenet(net, kBits, kBatch);
  net.initialize(1);
  net.set_input_gradient(false);  // as PyTorch, whose input does not require a gradient
  nmhash::loss::memory_bank<float> bank(nmhash::labels::single(bench::random_labels(kBank, 10, 3)), kBits);
  nmhash::optim::adam<float> opt(nmhash::optim::group_table{{}, {1e-4, 1e-5}});
  nmhash::tensor<float> x(nmhash::shape4{kBatch, 1, 28, 28}), du;
  std::mt19937_64 g(5);
  std::normal_distribution<float> n01;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = n01(g);
  std::vector<std::size_t> idx(kBatch);
  std::size_t step = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) idx[i] = (step * kBatch + i) % kBank;
    ++step;
    bench::dpsh_train_step(net, bank, opt, x, idx, du);
  }
  state.counters["omp_threads"] = threads;
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(kBatch) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, [] {
    for (int t : bench::thread_counts())
      benchmark::RegisterBenchmark("train/lenet_dpsh_K48_B128", BM_train_step_lenet_dpsh)
          ->Arg(t)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(3.0);
  });
}
