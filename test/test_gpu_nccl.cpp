// The NCCL collectives of data-parallel GPU training (nmhash/cuda/nccl.cuh)
// under the SIMT execution layer and its test NCCL (ranks as threads):
// gathered rows land where one process has them, and the rank-order sum
// is, bit for bit, rank 0's buffer plus rank 1's plus ... in that order
// (nmhash::mpi::sum_in_rank_order's sum).
#include <catch2/catch.hpp>

#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/cuda/nccl.cuh"

namespace {

using nmhash::gpu::device_buffer;

// Runs body(rank) for ranks 0 .. P - 1, each on its own thread with its
// own member of one communicator; rethrows the first exception.
void on_ranks(int P, const std::function<void(nmhash::gpu::nccl_communicator&)>& body) {
  const ncclUniqueId id = nmhash::gpu::nccl_communicator::unique_id();
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(P));
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      try {
        nmhash::gpu::nccl_communicator c(id, P, r);
        body(c);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Rank r's buffer of n floats: values whose sum depends on the order of
// the additions.
std::vector<float> rank_buffer(int r, std::size_t n) {
  std::mt19937_64 g(1000 + static_cast<unsigned>(r));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = u(g) * (r % 2 ? 1e-4f : 1e3f);
  return v;
}

}  // namespace

TEST_CASE("gpu gather_rows over NCCL gives every rank the batch in row order", "[gpu][nccl]") {
  for (int P : {1, 2, 3, 4})
    for (std::size_t rows : {0u, 1u, 3u, 7u, 64u}) {
      const std::size_t width = 5;
      std::vector<float> expected(rows * width);
      for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<float>(i) + 0.25f;
      std::vector<std::vector<float>> got(static_cast<std::size_t>(P));
      on_ranks(P, [&](nmhash::gpu::nccl_communicator& c) {
        const std::size_t lo = nmhash::split_begin(rows, P, c.rank()), hi = nmhash::split_begin(rows, P, c.rank() + 1);
        device_buffer<float> local(expected.data() + lo * width, (hi - lo) * width), full(rows * width);
        full.zero();
        nmhash::gpu::gather_rows(c, hi > lo ? local.data() : nullptr, full.data(), rows, width, nullptr);
        auto& out = got[static_cast<std::size_t>(c.rank())];
        out.resize(rows * width);
        full.copy_to(out.data(), out.size());
      });
      for (int r = 0; r < P; ++r) {
        INFO("P = " << P << ", rows = " << rows << ", rank " << r);
        CHECK(got[static_cast<std::size_t>(r)] == expected);
      }
    }
}

TEST_CASE("gpu rank_order_sum over NCCL adds the ranks' buffers in rank order, bit for bit", "[gpu][nccl]") {
  for (int P : {1, 2, 3, 4})
    for (std::size_t n : {0u, 1u, 2u, 5u, 1000u, 4099u}) {
      std::vector<float> expected = rank_buffer(0, n), reversed = rank_buffer(P - 1, n);
      for (int r = 1; r < P; ++r) {
        const auto b = rank_buffer(r, n);
        for (std::size_t i = 0; i < n; ++i) expected[i] += b[i];
      }
      for (int r = P - 2; r >= 0; --r) {
        const auto b = rank_buffer(r, n);
        for (std::size_t i = 0; i < n; ++i) reversed[i] += b[i];
      }
      std::vector<std::vector<float>> got(static_cast<std::size_t>(P));
      on_ranks(P, [&](nmhash::gpu::nccl_communicator& c) {
        const auto mine = rank_buffer(c.rank(), n);
        device_buffer<float> buf(mine.data(), n);
        nmhash::gpu::rank_order_sum<float> sum;
        sum(c, buf.data(), n, nullptr);
        sum(c, buf.data(), 0, nullptr);  // nothing to add: leaves buf alone
        auto& out = got[static_cast<std::size_t>(c.rank())];
        out.resize(n);
        buf.copy_to(out.data(), n);
      });
      for (int r = 0; r < P; ++r) {
        INFO("P = " << P << ", n = " << n << ", rank " << r);
        CHECK(std::memcmp(got[static_cast<std::size_t>(r)].data(), expected.data(), n * sizeof(float)) == 0);
      }
      // The data tell the orders apart, so the comparison above can fail.
      if (P >= 3 && n >= 1000) CHECK(expected != reversed);
    }
}

TEST_CASE("gpu nccl_communicator refuses a rank outside the communicator", "[gpu][nccl]") {
  const ncclUniqueId id = nmhash::gpu::nccl_communicator::unique_id();
  CHECK_THROWS_WITH(nmhash::gpu::nccl_communicator(id, 2, 2), Catch::Contains("rank 2 of 2"));
}
