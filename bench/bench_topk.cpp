// Exact Hamming top-k: nmhash::hamming_knn and nmhash::binary_index (codes
// at 8 bytes, the byte layout) against FAISS IndexBinaryFlat (the
// libfaiss-dev build), same data, same k, same threads, in one run.
// Q = 1,000 random queries, N = 1,000,000 random 64-bit codes, k = 100;
// and the latency of a single query, which binary_index splits across
// threads by database parts.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "bench_data.hpp"

#if defined(NMHASH_BENCH_WITH_FAISS)
#include <faiss/IndexBinaryFlat.h>
#endif

namespace {

constexpr std::size_t kBits = 64, kQueries = 1000, kDatabase = 1000000, kTop = 100;

struct dataset {
  nmhash::packed_codes q = bench::random_codes(kQueries, kBits, 1);
  nmhash::packed_codes db = bench::random_codes(kDatabase, kBits, 2);
  std::vector<std::uint8_t> q_bytes, db_bytes;
  nmhash::binary_index index{kBits};
  dataset() {
    index.add(db);
    // FAISS reads codes as bytes; lsb_first bytes are the same memory as
    // nmhash's little-endian words.
    q_bytes.resize(kQueries * 8);
    db_bytes.resize(kDatabase * 8);
    nmhash::to_packed_bytes(q, q_bytes.data(), nmhash::bit_order::lsb_first);
    nmhash::to_packed_bytes(db, db_bytes.data(), nmhash::bit_order::lsb_first);
  }
};

const dataset& data() {
  static const dataset d;
  return d;
}

void set_counters(benchmark::State& state, int threads) {
  state.counters["omp_threads"] = threads;
  state.counters["pairs/s"] = benchmark::Counter(
      static_cast<double>(kQueries) * static_cast<double>(kDatabase) *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["queries/s"] = benchmark::Counter(
      static_cast<double>(kQueries) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_nmhash_knn(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data();
  nmhash::knn_options opt;
  opt.threads.count = threads;
  for (auto _ : state) {
    auto res = nmhash::hamming_knn(d.q, d.db, kTop, opt);
    benchmark::DoNotOptimize(res.indices.data());
  }
  set_counters(state, threads);
}

void BM_nmhash_binary_index(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data();
  nmhash::scan_options opt;
  opt.threads.count = threads;
  nmhash::knn_result res;
  for (auto _ : state) {
    res = d.index.search(d.q, kTop, opt);
    benchmark::DoNotOptimize(res.indices.data());
  }
  set_counters(state, threads);
  const auto ours = nmhash::hamming_knn(d.q, d.db, kTop, nmhash::threads{threads});
  if (res.distances != ours.distances || res.indices != ours.indices)
    state.SkipWithError("binary_index and hamming_knn results differ");
}

// binary_index on 1 thread at each instruction-set level this CPU has
// (range(0) = level): what the run-time dispatch buys.
void BM_nmhash_binary_index_isa(benchmark::State& state) {
  const auto level = static_cast<nmhash::isa>(state.range(0));
  const auto& d = data();
  nmhash::scan_options opt;
  opt.threads.count = 1;
  nmhash::set_isa_limit(level);
  nmhash::knn_result res;
  for (auto _ : state) {
    res = d.index.search(d.q, kTop, opt);
    benchmark::DoNotOptimize(res.indices.data());
  }
  nmhash::set_isa_limit(nmhash::isa::avx512);
  set_counters(state, 1);
  state.SetLabel(nmhash::isa_name(level));
  const auto ours = nmhash::hamming_knn(d.q, d.db, kTop, nmhash::threads{1});
  if (res.distances != ours.distances || res.indices != ours.indices)
    state.SkipWithError("results differ between levels");
}

// Physical limits of one core. Popcount throughput: XOR and popcount of one
// query against 4,096 codes that stay in L1, summed (no selection), at the
// best level this CPU has. Memory bandwidth: a streaming sum over 512 MiB.
NMHASH_TARGET_POPCNT NMHASH_NOINLINE std::uint64_t popcount_sweep(std::uint64_t q, const std::uint64_t* x,
                                                                   std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, e = 0;
  for (std::size_t j = 0; j + 4 <= n; j += 4) {
    a += static_cast<std::uint64_t>(__builtin_popcountll(q ^ x[j]));
    b += static_cast<std::uint64_t>(__builtin_popcountll(q ^ x[j + 1]));
    c += static_cast<std::uint64_t>(__builtin_popcountll(q ^ x[j + 2]));
    e += static_cast<std::uint64_t>(__builtin_popcountll(q ^ x[j + 3]));
  }
  return a + b + c + e;
}

void BM_limit_popcount_pairs(benchmark::State& state) {
  std::vector<std::uint64_t> x(4096);
  for (std::size_t j = 0; j < x.size(); ++j) x[j] = 0x9E3779B97F4A7C15ULL * (j + 1);
  std::uint64_t q = 1, sum = 0;
  for (auto _ : state) {
    sum += popcount_sweep(q, x.data(), x.size());
    q = q * 6364136223846793005ULL + 1;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(x.size()) * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

void BM_limit_memory_read(benchmark::State& state) {
  std::vector<std::uint64_t> x(std::size_t{64} << 20, 1);  // 512 MiB
  std::uint64_t sum = 0;
  for (auto _ : state) {
    std::uint64_t a = 0, b = 0;
    for (std::size_t j = 0; j + 2 <= x.size(); j += 2) {
      a += x[j];
      b += x[j + 1];
    }
    sum += a + b;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(x.size() * 8) * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// One query at a time: the latency an engine serving single requests sees.
void BM_nmhash_binary_index_one_query(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data();
  nmhash::scan_options opt;
  opt.threads.count = threads;
  const nmhash::packed_codes one = d.index.reconstruct(7, 1);
  for (auto _ : state) {
    auto res = d.index.search(one, kTop, opt);
    benchmark::DoNotOptimize(res.indices.data());
  }
  state.counters["omp_threads"] = threads;
}

#if defined(NMHASH_BENCH_WITH_FAISS)
void BM_faiss_IndexBinaryFlat(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data();
  faiss::IndexBinaryFlat index(static_cast<faiss::Index::idx_t>(kBits));
  index.add(static_cast<faiss::Index::idx_t>(kDatabase), d.db_bytes.data());
  std::vector<std::int32_t> dist(kQueries * kTop);
  std::vector<faiss::Index::idx_t> labels(kQueries * kTop);
  omp_set_num_threads(threads);
  for (auto _ : state) {
    index.search(static_cast<faiss::Index::idx_t>(kQueries), d.q_bytes.data(),
                 static_cast<faiss::Index::idx_t>(kTop), dist.data(), labels.data());
    benchmark::DoNotOptimize(labels.data());
  }
  set_counters(state, threads);
  // Both must return the same distances (indices may differ inside the
  // last tie group only if FAISS breaks ties differently).
  const auto ours = nmhash::hamming_knn(d.q, d.db, kTop, nmhash::threads{threads});
  for (std::size_t i = 0; i < dist.size(); ++i)
    if (dist[i] != ours.distances[i]) {
      state.SkipWithError("FAISS and nmhash top-k distances differ");
      return;
    }
  std::size_t same_index = 0;
  for (std::size_t i = 0; i < dist.size(); ++i) same_index += labels[i] == ours.indices[i];
  state.counters["same_index_fraction"] = static_cast<double>(same_index) / static_cast<double>(dist.size());
}
#endif

void register_all() {
  benchmark::RegisterBenchmark("limits/popcount_pairs_in_L1", BM_limit_popcount_pairs)->UseRealTime()->MinTime(0.3);
  benchmark::RegisterBenchmark("limits/memory_read", BM_limit_memory_read)
      ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
  for (int l = 0; l <= static_cast<int>(nmhash::detected_isa()); ++l)
    benchmark::RegisterBenchmark("topk/K64/nmhash_binary_index_by_isa", BM_nmhash_binary_index_isa)
        ->Arg(l)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(l == 0 ? 1 : 2);
  for (int t : bench::thread_counts()) {
    benchmark::RegisterBenchmark("topk/K64/nmhash_hamming_knn", BM_nmhash_knn)
        ->Arg(t)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(t == 1 ? 2 : 4);
    benchmark::RegisterBenchmark("topk/K64/nmhash_binary_index", BM_nmhash_binary_index)
        ->Arg(t)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(t == 1 ? 2 : 4);
    benchmark::RegisterBenchmark("topk/K64/one_query/nmhash_binary_index", BM_nmhash_binary_index_one_query)
        ->Arg(t)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
#if defined(NMHASH_BENCH_WITH_FAISS)
    benchmark::RegisterBenchmark("topk/K64/faiss_IndexBinaryFlat", BM_faiss_IndexBinaryFlat)
        ->Arg(t)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(t == 1 ? 1 : 2);
#endif
  }
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main(argc, argv, register_all); }
