// The SIMT execution layer itself: barriers, shared memory, warp
// intrinsics and atomics behave as on a GPU, and misuse is reported.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "nmhash/cuda/device_utils.cuh"

namespace {

// Block-wide reverse through shared memory: needs a real barrier.
__global__ void reverse_block(const int* in, int* out) {
  __shared__ int tile[256];
  const unsigned t = threadIdx.x;
  tile[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = tile[blockDim.x - 1 - t];
}

// Dynamic shared memory and a tree reduction with a barrier per level.
__global__ void block_sum(const int* in, int* out) {
  NMHASH_DYNAMIC_SHARED(int, partial);
  const unsigned t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
    if (t < s) partial[t] += partial[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

__global__ void warp_ops(const int* in, int* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  int v = in[t];
  // Warp sum by xor-shuffle butterfly.
  int s = v;
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
  // Inclusive scan by shuffle-up.
  int scan = v;
  for (unsigned o = 1; o < 32; o *= 2) {
    const int up = __shfl_up_sync(0xFFFFFFFFu, scan, o);
    if (lane >= o) scan += up;
  }
  const int down = __shfl_down_sync(0xFFFFFFFFu, v, 1);
  const int bcast = __shfl_sync(0xFFFFFFFFu, v, 7);
  const unsigned odd = __ballot_sync(0xFFFFFFFFu, v % 2);
  const unsigned same = __match_any_sync(0xFFFFFFFFu, v % 3);
  out[6 * t + 0] = s;
  out[6 * t + 1] = scan;
  out[6 * t + 2] = down;
  out[6 * t + 3] = bcast;
  out[6 * t + 4] = static_cast<int>(odd);
  out[6 * t + 5] = static_cast<int>(same);
}

__global__ void count_atomic(unsigned long long* counter, int* hist) {
  atomicAdd(counter, 1ULL);
  atomicAdd(&hist[threadIdx.x % 4], 1);
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
  if (threadIdx.x >= 16) {
    __syncthreads();
    __syncthreads();
  }
}

__global__ void partial_mask_shuffle(int* out) {
  if (threadIdx.x % 32 < 16) out[threadIdx.x] = __shfl_sync(0xFFFFFFFFu, 1, 0);
}

__global__ void count_true(const int* in, int* out) {
  const int c = __syncthreads_count(in[blockIdx.x * blockDim.x + threadIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = c;
}

}  // namespace

TEST_CASE("SIMT: __syncthreads and static shared memory across blocks", "[simt]") {
  std::vector<int> in(3 * 256), out(3 * 256);
  std::iota(in.begin(), in.end(), 0);
  nmhash::simt::launch({dim3(3), dim3(256)}, reverse_block, in.data(), out.data());
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 256; ++t) REQUIRE(out[b * 256 + t] == b * 256 + 255 - t);
}

TEST_CASE("SIMT: dynamic shared memory and a barrier per reduction level", "[simt]") {
  std::vector<int> in(4 * 128), out(4);
  std::iota(in.begin(), in.end(), 1);
  nmhash::simt::launch({dim3(4), dim3(128), 128 * sizeof(int)}, block_sum, in.data(), out.data());
  for (int b = 0; b < 4; ++b) {
    int expect = 0;
    for (int t = 0; t < 128; ++t) expect += in[b * 128 + t];
    REQUIRE(out[b] == expect);
  }
}

TEST_CASE("SIMT: shuffles, ballot and match_any follow CUDA semantics", "[simt]") {
  std::vector<int> in(64), out(6 * 64);
  for (int i = 0; i < 64; ++i) in[i] = (i * 7 + 3) % 11;
  nmhash::simt::launch({dim3(1), dim3(64)}, warp_ops, in.data(), out.data());
  for (int w = 0; w < 2; ++w) {
    int sum = 0;
    for (int l = 0; l < 32; ++l) sum += in[w * 32 + l];
    int scan = 0;
    unsigned odd = 0;
    for (int l = 0; l < 32; ++l) odd |= static_cast<unsigned>(in[w * 32 + l] % 2) << l;
    for (int l = 0; l < 32; ++l) {
      const int t = w * 32 + l;
      scan += in[t];
      unsigned same = 0;
      for (int m = 0; m < 32; ++m) same |= static_cast<unsigned>(in[w * 32 + m] % 3 == in[t] % 3) << m;
      REQUIRE(out[6 * t + 0] == sum);
      REQUIRE(out[6 * t + 1] == scan);
      REQUIRE(out[6 * t + 2] == (l < 31 ? in[t + 1] : in[t]));
      REQUIRE(out[6 * t + 3] == in[w * 32 + 7]);
      REQUIRE(static_cast<unsigned>(out[6 * t + 4]) == odd);
      REQUIRE(static_cast<unsigned>(out[6 * t + 5]) == same);
    }
  }
}

TEST_CASE("SIMT: atomics and __syncthreads_count", "[simt]") {
  unsigned long long counter = 0;
  std::vector<int> hist(4, 0);
  nmhash::simt::launch({dim3(5), dim3(96)}, count_atomic, &counter, hist.data());
  REQUIRE(counter == 5 * 96);
  REQUIRE(hist == std::vector<int>(4, 5 * 96 / 4));
  std::vector<int> flags(2 * 64), out(2);
  for (int i = 0; i < 128; ++i) flags[i] = i % 3 == 0;
  nmhash::simt::launch({dim3(2), dim3(64)}, count_true, flags.data(), out.data());
  REQUIRE(out[0] == 22);
  REQUIRE(out[1] == 21);
}

TEST_CASE("SIMT: barrier misuse is reported, not hung", "[simt]") {
  std::vector<int> out(64);
  REQUIRE_THROWS_WITH(nmhash::simt::launch({dim3(1), dim3(32)}, partial_mask_shuffle, out.data()),
                      Catch::Contains("not in its mask") || Catch::Contains("deadlock") ||
                          Catch::Contains("exited"));
  // Threads 16..31 wait at a second barrier nobody else reaches, after
  // 0..15 exited: that one completes (exited threads do not hold a barrier,
  // as on current GPUs).
  nmhash::simt::launch({dim3(1), dim3(32)}, divergent_barrier, out.data());
  REQUIRE(out[0] == 1);
  REQUIRE(out[31] == 1);
}
