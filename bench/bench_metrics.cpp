// MAP and leave-one-bit-out MAP on fmnist-dpsh-sized data (Q = 1,000
// queries, N = 69,000 database codes, 10 classes) against a sort-based
// implementation (std::stable_sort per query, what public evaluation code
// does), measured in one run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <vector>


#include "bench_data.hpp"

namespace {

constexpr std::size_t kQueries = 1000, kDatabase = 69000;

struct dataset {
  std::vector<std::int32_t> ql = bench::random_labels(kQueries, 10, 3);
  std::vector<std::int32_t> dl = bench::random_labels(kDatabase, 10, 4);
  nmhash::labels QL = nmhash::labels::single(ql), DL = nmhash::labels::single(dl);
  nmhash::packed_codes q, db;
  explicit dataset(std::size_t bits)
      : q(bench::class_codes(ql, bits, 0.2, 5)), db(bench::class_codes(dl, bits, 0.2, 6)) {}
};

const dataset& data(std::size_t bits) {
  static const dataset d48(48), d60(60);
  return bits == 48 ? d48 : d60;
}

// Index-order MAP by a stable sort of every query's distances.
double sort_based_map(const dataset& d, int threads) {
  const std::size_t n = d.db.size();
  std::vector<double> ap(d.q.size());
  nmhash::parallel_for(static_cast<std::int64_t>(d.q.size()), nmhash::threads{threads}, 4,
                       [&](std::int64_t qi) {
    const auto q = static_cast<std::size_t>(qi);
    std::vector<int> dist(n);
    for (std::size_t j = 0; j < n; ++j)
      dist[j] = nmhash::hamming<0>(d.q.row(q), d.db.row(j), d.db.words_per_code());
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return dist[a] < dist[b]; });
    double sum = 0;
    std::size_t hits = 0;
    for (std::size_t r = 0; r < n; ++r)
      if (d.dl[order[r]] == d.ql[q]) {
        ++hits;
        sum += static_cast<double>(hits) / static_cast<double>(r + 1);
      }
    ap[q] = hits ? sum / static_cast<double>(hits) : 0.0;
  });
  return std::accumulate(ap.begin(), ap.end(), 0.0) / static_cast<double>(ap.size());
}

void counters(benchmark::State& state, int threads) {
  const double pairs = static_cast<double>(kQueries) * static_cast<double>(kDatabase) *
                       static_cast<double>(state.iterations());
  state.counters["omp_threads"] = threads;
  state.counters["pairs/s"] = benchmark::Counter(pairs, benchmark::Counter::kIsRate);
  state.counters["pairs/s/core"] =
      benchmark::Counter(pairs / threads, benchmark::Counter::kIsRate);
}

void BM_map_sort_based(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data(48);
  for (auto _ : state) benchmark::DoNotOptimize(sort_based_map(d, threads));
  counters(state, threads);
}

// Both tie conventions (histogram pass + index-order walk).
void BM_map_nmhash_both(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data(static_cast<std::size_t>(state.range(1)));
  double v = 0;
  for (auto _ : state) {
    v = nmhash::mean_average_precision(d.q, d.db, d.QL, d.DL, nmhash::threads{threads}).index_order;
    benchmark::DoNotOptimize(v);
  }
  counters(state, threads);
  if (std::abs(v - sort_based_map(d, threads)) > 1e-9)
    state.SkipWithError("index-order MAP differs from the sort-based MAP");
}

void BM_map_nmhash_tie_aware(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto& d = data(static_cast<std::size_t>(state.range(1)));
  for (auto _ : state)
    benchmark::DoNotOptimize(
        nmhash::mean_average_precision(d.q, d.db, d.QL, d.DL, nmhash::threads{threads}, false));
  counters(state, threads);
}

void BM_loo_nmhash(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto ties = state.range(1) ? nmhash::tie_rule::index_order : nmhash::tie_rule::aware;
  const auto& d = data(60);
  for (auto _ : state)
    benchmark::DoNotOptimize(
        nmhash::leave_one_bit_out_map(d.q, d.db, d.QL, d.DL, ties, nmhash::threads{threads}));
  counters(state, threads);
}

void register_all() {
  for (int t : bench::thread_counts()) {
    benchmark::RegisterBenchmark("map/K48/sort_based", BM_map_sort_based)
        ->Arg(t)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
    benchmark::RegisterBenchmark("map/K48/nmhash_both_conventions", BM_map_nmhash_both)
        ->Args({t, 48})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("map/K60/nmhash_both_conventions", BM_map_nmhash_both)
        ->Args({t, 60})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("map/K48/nmhash_tie_aware", BM_map_nmhash_tie_aware)
        ->Args({t, 48})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("map/K60/nmhash_tie_aware", BM_map_nmhash_tie_aware)
        ->Args({t, 60})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("loo/K60/nmhash_tie_aware", BM_loo_nmhash)
        ->Args({t, 0})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("loo/K60/nmhash_index_order", BM_loo_nmhash)
        ->Args({t, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  }
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main(argc, argv, register_all); }
