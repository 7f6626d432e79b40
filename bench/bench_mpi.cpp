// Strong and weak scaling of sharded search and distributed evaluation
// (nmhash::mpi), run under mpirun by scripts/bench_mpi.sh. Every rank
// builds its shard of one deterministic database (uniform random codes,
// 10 classes), the root holds the queries. For each operation it reports
// the wall time on the root (median of --repeat runs, each between
// barriers), the slowest rank's local part (the scan of its shard alone)
// and the rest: merging and communication.
//
//   nmhash_bench_mpi --codes N        strong scaling: N codes in all
//   nmhash_bench_mpi --codes-per-rank N   weak scaling: N codes per rank
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nmhash/mpi.hpp"

namespace {

namespace mpi = nmhash::mpi;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Codes [b, e) of the database: code i depends on i only, so every split
// builds the same database.
nmhash::packed_codes codes_range(std::size_t b, std::size_t e, std::size_t bits, std::uint64_t seed) {
  nmhash::packed_codes c(e - b, bits);
  for (std::size_t i = b; i < e; ++i) {
    std::mt19937_64 g(seed ^ (i * 0x9E3779B97F4A7C15ull));
    for (std::size_t w = 0; w < c.words_per_code(); ++w) c.row(i - b)[w] = g();
    c.row(i - b)[c.words_per_code() - 1] &= c.tail_mask();
  }
  return c;
}

nmhash::labels labels_range(std::size_t b, std::size_t e) {
  std::vector<std::int32_t> ids;
  for (std::size_t i = b; i < e; ++i) ids.push_back(static_cast<std::int32_t>((i * 2654435761u) % 10));
  return nmhash::labels::single(std::move(ids));
}

template <class F>
double median_time(const mpi::communicator& c, int repeat, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeat; ++r) {
    c.barrier();
    const auto t0 = clock_type::now();
    f();
    c.barrier();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  mpi::environment env(argc, argv);
  const mpi::communicator world;
  std::size_t codes = 0, per_rank = 0, queries = 1000, eval_queries = 200, bits = 64, k = 100;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const auto v = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
    if (a == "--codes") codes = v;
    else if (a == "--codes-per-rank") per_rank = v;
    else if (a == "--queries") queries = v;
    else if (a == "--eval-queries") eval_queries = v;
    else if (a == "--bits") bits = v;
    else if (a == "--k") k = v;
    else if (a == "--repeat") repeat = static_cast<int>(v);
    else {
      if (world.rank() == 0) std::fprintf(stderr, "nmhash_bench_mpi: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const int P = world.size();
  const std::size_t n = per_rank ? per_rank * static_cast<std::size_t>(P) : codes;
  if (n == 0) {
    if (world.rank() == 0) std::fprintf(stderr, "nmhash_bench_mpi: give --codes N or --codes-per-rank N\n");
    return 2;
  }
  const std::size_t b = mpi::split_begin(n, P, world.rank()), e = mpi::split_begin(n, P, world.rank() + 1);
  const nmhash::packed_codes shard = codes_range(b, e, bits, 1);
  const nmhash::labels shard_labels = labels_range(b, e);
  nmhash::binary_index local(bits);
  local.add(shard);
  const mpi::sharded_index index(world, std::move(local));
  const nmhash::packed_codes q = codes_range(0, queries, bits, 2);
  const nmhash::packed_codes eq = codes_range(0, eval_queries, bits, 2);
  const nmhash::labels eql = labels_range(0, eval_queries);
  nmhash::scan_options one_thread;
  one_thread.threads.count = 1;
  nmhash::evaluation_options aware;
  aware.precision_at.clear();
  aware.index_order = false;
  aware.threads.count = 1;
  nmhash::evaluation_options both = aware;
  both.index_order = true;

  // The local parts alone: the slowest rank bounds the distributed time.
  const double scan_local = world.all_reduce(
      median_time(world, repeat, [&] { (void)index.shard().search(q, k, one_thread); }), MPI_MAX);
  const double search = median_time(world, repeat, [&] { (void)index.search(q, k, one_thread); });
  const double eval_aware = median_time(world, repeat, [&] { (void)mpi::evaluate(world, eq, shard, eql, shard_labels, aware); });
  const double eval_both = median_time(world, repeat, [&] { (void)mpi::evaluate(world, eq, shard, eql, shard_labels, both); });
  if (world.rank() == 0) {
    std::printf("%-6s %3d ranks  N = %10zu (%zu per rank)  K = %zu\n", per_rank ? "weak" : "strong", P, n, n / P, bits);
    std::printf("  search  %5zu queries, k = %zu: %8.4f s  %9.1f q/s  (slowest local scan %.4f s, merge+comm %.4f s)\n",
                queries, k, search, static_cast<double>(queries) / search, scan_local, search - scan_local);
    std::printf("  evaluate %4zu queries, tie-aware:     %8.4f s  %9.1f q/s\n", eval_queries, eval_aware,
                static_cast<double>(eval_queries) / eval_aware);
    std::printf("  evaluate %4zu queries, + index order: %8.4f s  %9.1f q/s\n", eval_queries, eval_both,
                static_cast<double>(eval_queries) / eval_both);
  }
  return 0;
}
