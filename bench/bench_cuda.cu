// CUDA kernels timed with CUDA events (manual time), Q = 10,000 queries,
// N = 1,000,000 random 64-bit codes: top-100, MAP (both conventions) and
// tie-aware leave-one-bit-out MAP at K = 60. Without a CUDA device every
// benchmark reports itself skipped.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "nmhash/cuda/api.cuh"

namespace {

constexpr std::size_t kQueries = 10000, kDatabase = 1000000;

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

struct device_data {
  std::size_t bits;
  nmhash::gpu::device_buffer<std::uint64_t> q, db;
  nmhash::gpu::device_buffer<std::int32_t> ql, dl;
  static std::vector<std::uint64_t> words(std::size_t n, std::size_t bits, std::uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<std::uint64_t> w(n);
    const std::uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    for (auto& v : w) v = g() & mask;
    return w;
  }
  static std::vector<std::int32_t> ids(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<std::int32_t> v(n);
    for (auto& x : v) x = static_cast<std::int32_t>(g() % 10);
    return v;
  }
  explicit device_data(std::size_t b)
      : bits(b),
        q(words(kQueries, b, 1).data(), kQueries),
        db(words(kDatabase, b, 2).data(), kDatabase),
        ql(ids(kQueries, 3).data(), kQueries),
        dl(ids(kDatabase, 4).data(), kDatabase) {}
};

// Runs f() between two events per iteration and reports the event time.
template <class F>
void timed(benchmark::State& state, F&& f) {
  cudaEvent_t start, stop;
  NMHASH_CUDA_CHECK(cudaEventCreate(&start));
  NMHASH_CUDA_CHECK(cudaEventCreate(&stop));
  for (auto _ : state) {
    NMHASH_CUDA_CHECK(cudaEventRecord(start));
    f();
    NMHASH_CUDA_CHECK(cudaEventRecord(stop));
    NMHASH_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    NMHASH_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1000.0);
  }
  state.counters["pairs/s"] = benchmark::Counter(
      static_cast<double>(kQueries) * kDatabase * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

void BM_topk(benchmark::State& state) {
  if (!have_device()) return state.SkipWithError("no CUDA device");
  static device_data d(64);
  const std::size_t k = 100;
  nmhash::gpu::device_buffer<std::int32_t> dist(kQueries * k);
  nmhash::gpu::device_buffer<std::int64_t> idx(kQueries * k);
  timed(state, [&] {
    nmhash::gpu::hamming_knn(d.q.data(), kQueries, d.db.data(), kDatabase, d.bits, k, dist.data(),
                             idx.data(), nullptr);
  });
}

void BM_map(benchmark::State& state) {
  if (!have_device()) return state.SkipWithError("no CUDA device");
  static device_data d(64);
  nmhash::gpu::device_buffer<unsigned char> ws(nmhash::gpu::map_workspace_bytes(kQueries));
  nmhash::gpu::device_buffer<double> out(4);
  timed(state, [&] {
    nmhash::gpu::mean_average_precision(d.q.data(), kQueries, d.db.data(), kDatabase, d.bits,
                                        nmhash::gpu::class_id_relevance{d.ql.data(), d.dl.data()}, 0,
                                        out.data(), ws.data(), ws.size(), nullptr);
  });
}

void BM_loo(benchmark::State& state) {
  if (!have_device()) return state.SkipWithError("no CUDA device");
  static device_data d(60);
  nmhash::gpu::device_buffer<unsigned char> ws(nmhash::gpu::loo_workspace_bytes(kQueries, 60));
  nmhash::gpu::device_buffer<double> out(61);
  timed(state, [&] {
    nmhash::gpu::leave_one_bit_out_map(d.q.data(), kQueries, d.db.data(), kDatabase, 60,
                                       nmhash::gpu::class_id_relevance{d.ql.data(), d.dl.data()},
                                       out.data(), ws.data(), ws.size(), nullptr);
  });
}

BENCHMARK(BM_topk)->Name("cuda/K64/hamming_knn_k100")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_map)->Name("cuda/K64/mean_average_precision")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_loo)->Name("cuda/K60/leave_one_bit_out_map")->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
