// Filtered exact top-k (nmhash/index/filter.hpp) against the unfiltered
// scan of the same binary_index, in one run: N = 1,000,000 random 64-bit
// codes with ids of their own (a shuffled numbering, as an engine's), Q =
// 1,000 queries, k = 100. Filters: an allow-list of 1 % of the ids and a
// deny-list of 10 % (90 % admitted), each timed with the filter prepared
// inside the timed loop (search_filter: id lookups included) and prepared
// once (prepared_filter, reused); a 90 % position bitmap; and the
// multi-index (mih_index) on clustered codes with a 1 % allow-list.
// Every filtered result is checked against the unfiltered search of an
// index holding only the admitted codes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "bench_data.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/mih.hpp"

namespace {

constexpr std::size_t kBits = 64, kQueries = 1000, kDatabase = 1000000, kTop = 100;

struct dataset {
  nmhash::packed_codes q = bench::random_codes(kQueries, kBits, 11);
  nmhash::packed_codes db = bench::random_codes(kDatabase, kBits, 12);
  std::vector<std::int64_t> ids;
  nmhash::binary_index index{kBits};
  std::vector<std::int64_t> allow_1, deny_10;
  std::vector<bool> bitmap_90;
  dataset() {
    ids.resize(kDatabase);
    std::iota(ids.begin(), ids.end(), std::int64_t{1000000});
    std::mt19937_64 g(13);
    std::shuffle(ids.begin(), ids.end(), g);
    index.add_with_ids(db, ids);
    bitmap_90.resize(kDatabase);
    for (std::size_t j = 0; j < kDatabase; ++j) {
      const auto u = g() % 100;
      if (u < 1) allow_1.push_back(ids[j]);
      if (u >= 90) deny_10.push_back(ids[j]);
      bitmap_90[j] = g() % 10 != 0;
    }
  }
};

const dataset& data() {
  static const dataset d;
  return d;
}

nmhash::scan_options threads_of(benchmark::State& state) {
  nmhash::scan_options opt;
  opt.threads.count = static_cast<int>(state.range(0));
  return opt;
}

void counters(benchmark::State& state, std::size_t admitted) {
  state.counters["threads"] = static_cast<double>(state.range(0));
  state.counters["admitted"] = static_cast<double>(admitted);
  state.counters["queries/s"] =
      benchmark::Counter(static_cast<double>(kQueries) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// The unfiltered search of an index holding only the admitted codes, in
// position order: what a filtered search must return.
void check(benchmark::State& state, const nmhash::knn_result& got, const nmhash::prepared_filter& f) {
  const auto& d = data();
  nmhash::binary_index only(kBits);
  std::vector<std::int64_t> kept_ids;
  nmhash::packed_codes kept(f.admitted(), kBits);
  std::size_t r = 0;
  for (std::size_t j = 0; j < kDatabase; ++j)
    if (f.admits(j)) {
      std::copy(d.db.row(j), d.db.row(j) + d.db.words_per_code(), kept.row(r++));
      kept_ids.push_back(d.ids[j]);
    }
  only.add_with_ids(kept, kept_ids);
  const auto want = only.search(d.q, kTop);
  if (got.distances != want.distances || got.indices != want.indices)
    state.SkipWithError("the filtered search differs from the search over the admitted codes");
}

void BM_unfiltered(benchmark::State& state) {
  const auto& d = data();
  const auto opt = threads_of(state);
  for (auto _ : state) benchmark::DoNotOptimize(d.index.search(d.q, kTop, opt).indices.data());
  counters(state, kDatabase);
}

template <bool Prepared>
void filtered(benchmark::State& state, const nmhash::search_filter& f) {
  const auto& d = data();
  const auto opt = threads_of(state);
  const auto prepared = d.index.prepare(f);
  nmhash::knn_result res;
  for (auto _ : state) {
    if constexpr (Prepared)
      res = d.index.search(d.q, kTop, prepared, opt);
    else
      res = d.index.search(d.q, kTop, f, opt);
    benchmark::DoNotOptimize(res.indices.data());
  }
  counters(state, prepared.admitted());
  check(state, res, prepared);
}

void BM_allow_1pct(benchmark::State& state) { filtered<false>(state, nmhash::search_filter::allow_ids(data().allow_1)); }
void BM_allow_1pct_prepared(benchmark::State& state) {
  filtered<true>(state, nmhash::search_filter::allow_ids(data().allow_1));
}
void BM_deny_10pct(benchmark::State& state) { filtered<false>(state, nmhash::search_filter::deny_ids(data().deny_10)); }
void BM_deny_10pct_prepared(benchmark::State& state) {
  filtered<true>(state, nmhash::search_filter::deny_ids(data().deny_10));
}
void BM_bitmap_90pct_prepared(benchmark::State& state) {
  filtered<true>(state, nmhash::search_filter::bitmap(data().bitmap_90));
}

// Multi-index hashing on clustered codes (where it is sub-linear), with and
// without a 1 % allow-list.
struct clustered {
  nmhash::binary_index index{kBits};
  nmhash::packed_codes q{0, kBits};
  std::vector<std::int64_t> allow;
  clustered() {
    std::mt19937_64 g(21);
    const std::size_t centres = 1000;
    nmhash::packed_codes c(centres, kBits);
    for (std::size_t i = 0; i < centres; ++i) c.row(i)[0] = g();
    nmhash::packed_codes db(kDatabase, kBits);
    auto noisy = [&](std::uint64_t x) {
      for (int b = 0; b < 4; ++b) x ^= std::uint64_t{1} << (g() % 64);
      return x;
    };
    for (std::size_t j = 0; j < kDatabase; ++j) db.row(j)[0] = noisy(c.row(g() % centres)[0]);
    index.add(db);
    q = nmhash::packed_codes(kQueries, kBits);
    for (std::size_t i = 0; i < kQueries; ++i) q.row(i)[0] = noisy(c.row(g() % centres)[0]);
    for (std::size_t j = 0; j < kDatabase; ++j)
      if (g() % 100 == 0) allow.push_back(static_cast<std::int64_t>(j));
  }
};

const clustered& clustered_data() {
  static const clustered d;
  return d;
}

template <bool Filtered>
void mih(benchmark::State& state) {
  const auto& d = clustered_data();
  const nmhash::mih_index m(d.index);
  const auto prepared = d.index.prepare(Filtered ? nmhash::search_filter::allow_ids(d.allow) : nmhash::search_filter{});
  nmhash::knn_result res;
  for (auto _ : state) {
    res = m.search(d.q, kTop, prepared, nmhash::threads{static_cast<int>(state.range(0))});
    benchmark::DoNotOptimize(res.indices.data());
  }
  counters(state, prepared.admitted());
  const auto want = d.index.search(d.q, kTop, prepared);
  if (res.distances != want.distances || res.indices != want.indices)
    state.SkipWithError("the multi-index differs from the flat scan");
}
void BM_mih_clustered(benchmark::State& state) { mih<false>(state); }
void BM_mih_clustered_allow_1pct(benchmark::State& state) { mih<true>(state); }
void BM_flat_clustered_allow_1pct(benchmark::State& state) {
  const auto& d = clustered_data();
  const auto prepared = d.index.prepare(nmhash::search_filter::allow_ids(d.allow));
  const auto opt = threads_of(state);
  for (auto _ : state) benchmark::DoNotOptimize(d.index.search(d.q, kTop, prepared, opt).indices.data());
  counters(state, prepared.admitted());
}

}  // namespace

BENCHMARK(BM_unfiltered)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_allow_1pct)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_allow_1pct_prepared)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_deny_10pct)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_deny_10pct_prepared)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bitmap_90pct_prepared)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mih_clustered)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mih_clustered_allow_1pct)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_flat_clustered_allow_1pct)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
