// Instantiates every kernel so that nvcc compiles it for each target
// architecture; the build prints ptxas' register, spill and shared-memory
// report for each, and fails on spills (see test/CMakeLists.txt).
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/pack.cuh"

namespace nmhash::gpu::kernels {
template __global__ void pack_signs<float>(const float*, std::size_t, std::size_t, std::uint64_t*);
template __global__ void pack_signs<double>(const double*, std::size_t, std::size_t, std::uint64_t*);
template __global__ void hamming_topk<1>(const std::uint64_t*, const std::uint64_t*, std::size_t,
                                         unsigned, unsigned, std::size_t, std::int32_t*, std::int64_t*);
template __global__ void hamming_topk<2>(const std::uint64_t*, const std::uint64_t*, std::size_t,
                                         unsigned, unsigned, std::size_t, std::int32_t*, std::int64_t*);
template __global__ void hamming_topk<0>(const std::uint64_t*, const std::uint64_t*, std::size_t,
                                         unsigned, unsigned, std::size_t, std::int32_t*, std::int64_t*);
}  // namespace nmhash::gpu::kernels
