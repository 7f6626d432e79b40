// Random codes and labels shared by the benchmarks.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "nmhash/loss/dpsh.hpp"
#include "nmhash/nmhash.hpp"

namespace bench {

// One training step as the trainers take it: forward, memory-bank update,
// DPSH loss, backward, optimizer step.
template <class Net, class Bank, class Optimizer, class Tensor>
void dpsh_train_step(Net& net, Bank& bank, Optimizer& opt, const Tensor& x, const std::vector<std::size_t>& idx,
                     Tensor& du) {
  const auto& u = net.forward(x, true);
  bank.update(u, idx);
  benchmark::DoNotOptimize(nmhash::loss::dpsh(u, idx, bank, 0.1, du));
  net.zero_grad();
  net.backward(du);
  opt.step(net.parameters(), net.gradients(), net.ranges());
}

inline nmhash::packed_codes random_codes(std::size_t n, std::size_t k, std::uint64_t seed) {
  nmhash::packed_codes c(n, k);
  std::mt19937_64 g(seed);
  for (std::size_t i = 0; i < n * c.words_per_code(); ++i) c.data()[i] = g();
  c.clear_padding();
  return c;
}

inline std::vector<std::int32_t> random_labels(std::size_t n, int classes, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::int32_t> l(n);
  for (auto& v : l) v = static_cast<std::int32_t>(g() % static_cast<std::uint64_t>(classes));
  return l;
}

// Codes correlated with their labels (a class prototype with each bit
// flipped with probability `noise`), so that rankings are not random and
// tie groups mix relevant and irrelevant items as trained codes do.
inline nmhash::packed_codes class_codes(const std::vector<std::int32_t>& labels, std::size_t k,
                                        double noise, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<nmhash::packed_codes> protos;
  const nmhash::packed_codes p = random_codes(64, k, 12345);
  std::bernoulli_distribution flip(noise);
  nmhash::packed_codes c(labels.size(), k);
  for (std::size_t i = 0; i < labels.size(); ++i)
    for (std::size_t j = 0; j < k; ++j)
      c.set_bit(i, j, p.bit(static_cast<std::size_t>(labels[i]) % 64, j) != flip(g));
  return c;
}

// The thread counts each benchmark runs with: 1 and all OpenMP threads.
inline std::vector<int> thread_counts() {
#if defined(_OPENMP)
  const int all = omp_get_max_threads();
#else
  const int all = 1;
#endif
  return all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
}

// main() of a benchmark binary whose benchmarks register_all() adds.
template <class Register>
int run_main(int argc, char** argv, Register register_all) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
