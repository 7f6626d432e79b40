// Thread-level parallelism helpers: a thread-count option and a parallel
// loop over an index range that uses OpenMP when the build has it and runs
// serially otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace nmhash {

// Number of threads the library may use; 0 means "all the OpenMP runtime
// offers" (OMP_NUM_THREADS, or the hardware threads).
struct threads {
  int count = 0;
};

inline int resolve_threads(threads t) {
#if defined(_OPENMP)
  return t.count > 0 ? t.count : omp_get_max_threads();
#else
  (void)t;
  return 1;
#endif
}

namespace detail {

#if defined(_OPENMP)
// body(i) for i in [0, n) in an OpenMP region of nt threads, dynamic
// chunks; the first exception is re-thrown here, the rest of the
// iterations skipped.
template <class Body>
void omp_for(std::int64_t n, int nt, std::int64_t chunk, Body& body) {
  std::exception_ptr failure;
  std::mutex failure_mutex;
  bool failed = false;
#pragma omp parallel for num_threads(nt) schedule(dynamic, chunk)
  for (std::int64_t i = 0; i < n; ++i) {
    bool skip;
#pragma omp atomic read
    skip = failed;
    if (skip) continue;
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
#pragma omp atomic write
      failed = true;
    }
  }
  if (failure) std::rethrow_exception(failure);
}
#endif

}  // namespace detail

// Calls body(i) for i in [0, n) across threads, with dynamic scheduling in
// chunks of `chunk`. An exception thrown by body is re-thrown on the calling
// thread (the first one wins; remaining iterations are skipped).
template <class Body>
void parallel_for(std::int64_t n, threads t, std::int64_t chunk, Body&& body) {
  if (n <= 0) return;
  const int nt = resolve_threads(t);
  if (nt <= 1 || n == 1) {
    for (std::int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#if defined(_OPENMP)
  detail::omp_for(n, nt, chunk, body);
#else
  (void)chunk;
  for (std::int64_t i = 0; i < n; ++i) body(i);
#endif
}

// Calls body(begin, end) for the blocks [b * block, min(n, (b + 1) * block))
// of [0, n), across threads. When the OpenMP runtime offers more than one
// thread the blocks always run inside a parallel region, even a single
// block: Eigen parallelises a matrix product only outside one, and its
// parallel blocking of the inner dimension depends on the thread count,
// while its single-thread blocking depends on the sizes alone. A product
// evaluated block by block here (with a block size that does not depend on
// the thread count) therefore gives the same bits for every thread count.
template <class Body>
void parallel_blocks(std::int64_t n, std::int64_t block, Body&& body) {
  if (n <= 0) return;
  const std::int64_t blocks = (n + block - 1) / block;
#if defined(_OPENMP)
  const int nt = omp_get_max_threads();
  if (nt > 1 && !omp_in_parallel()) {
    auto one = [&](std::int64_t b) { body(b * block, b + 1 < blocks ? (b + 1) * block : n); };
    detail::omp_for(blocks, nt, 1, one);
    return;
  }
#endif
  for (std::int64_t b = 0; b < blocks; ++b) body(b * block, b + 1 < blocks ? (b + 1) * block : n);
}

// Balanced consecutive split of n items over `parts` parts: part r holds
// [split_begin(n, parts, r), split_begin(n, parts, r + 1)). The rule every
// distributed split in nmhash follows (shards, batch rows).
inline std::size_t split_begin(std::size_t n, int parts, int r) {
  const auto P = static_cast<std::size_t>(parts), R = static_cast<std::size_t>(r);
  return (n / P) * R + (R < n % P ? R : n % P);
}

}  // namespace nmhash
