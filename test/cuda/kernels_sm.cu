// Instantiates every kernel so that nvcc compiles it for each target
// architecture; the build prints ptxas' register, spill and shared-memory
// report for each, and fails on spills (see test/CMakeLists.txt).
#include "nmhash/cuda/binary_index.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/loo_map.cuh"
#include "nmhash/cuda/loss.cuh"
#include "nmhash/cuda/map.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/cuda/optim.cuh"
#include "nmhash/cuda/pack.cuh"
#if NMHASH_TEST_NCCL
#include "nmhash/cuda/nccl.cuh"
#endif

namespace nmhash::gpu::kernels {
template __global__ void pack_signs<float>(const float*, std::size_t, std::size_t, std::uint64_t*);
template __global__ void pack_signs<double>(const double*, std::size_t, std::size_t, std::uint64_t*);
#define NMHASH_INSTANTIATE_TOPK(W, T, C)                                                             \
  template __global__ void hamming_topk<W, T, C>(const std::uint64_t*, std::size_t, C, std::size_t,   \
                                                 unsigned, unsigned, std::size_t, std::int32_t*,       \
                                                 std::int64_t*);
NMHASH_INSTANTIATE_TOPK(1, 8, word_rows)
NMHASH_INSTANTIATE_TOPK(2, 8, word_rows)
NMHASH_INSTANTIATE_TOPK(0, 8, word_rows)
NMHASH_INSTANTIATE_TOPK(0, 1, word_rows)
// binary_index's byte layout, for each load width.
#define NMHASH_INSTANTIATE_BYTES(G)                                                                       \
  NMHASH_INSTANTIATE_TOPK(1, 8, byte_rows<G>)                                                             \
  NMHASH_INSTANTIATE_TOPK(0, 8, byte_rows<G>)                                                             \
  NMHASH_INSTANTIATE_TOPK(0, 1, byte_rows<G>)                                                             \
  template __global__ void hamming_range_count<1, byte_rows<G>>(const std::uint64_t*, byte_rows<G>,       \
                                                                std::size_t, unsigned, unsigned, unsigned*); \
  template __global__ void hamming_range_count<0, byte_rows<G>>(const std::uint64_t*, byte_rows<G>,       \
                                                                std::size_t, unsigned, unsigned, unsigned*); \
  template __global__ void hamming_range_collect<1, byte_rows<G>>(const std::uint64_t*, byte_rows<G>,     \
                                                                  std::size_t, unsigned, unsigned,          \
                                                                  const std::size_t*, std::int64_t*,        \
                                                                  std::int32_t*);                           \
  template __global__ void hamming_range_collect<0, byte_rows<G>>(const std::uint64_t*, byte_rows<G>,     \
                                                                  std::size_t, unsigned, unsigned,          \
                                                                  const std::size_t*, std::int64_t*,        \
                                                                  std::int32_t*);
NMHASH_INSTANTIATE_BYTES(8)
NMHASH_INSTANTIATE_BYTES(4)
NMHASH_INSTANTIATE_BYTES(2)
NMHASH_INSTANTIATE_BYTES(1)
template __global__ void gather_codes<0>(const unsigned char*, const std::uint64_t*, std::size_t, unsigned,
                                         unsigned char*);
#define NMHASH_INSTANTIATE_AP(W, REL)                                                         \
  template __global__ void average_precision<W, REL>(const std::uint64_t*, const std::uint64_t*, \
                                                     std::size_t, unsigned, unsigned, REL,        \
                                                     std::size_t, double*);
NMHASH_INSTANTIATE_AP(1, class_id_relevance)
NMHASH_INSTANTIATE_AP(2, class_id_relevance)
NMHASH_INSTANTIATE_AP(0, class_id_relevance)
NMHASH_INSTANTIATE_AP(1, label_set_relevance)
NMHASH_INSTANTIATE_AP(2, label_set_relevance)
NMHASH_INSTANTIATE_AP(0, label_set_relevance)
#define NMHASH_INSTANTIATE_LOO(W, REL)                                                      \
  template __global__ void loo_average_precision<W, REL>(const std::uint64_t*,                 \
                                                         const std::uint64_t*, std::size_t,    \
                                                         unsigned, REL, double*);
NMHASH_INSTANTIATE_LOO(1, class_id_relevance)
NMHASH_INSTANTIATE_LOO(2, class_id_relevance)
NMHASH_INSTANTIATE_LOO(1, label_set_relevance)
NMHASH_INSTANTIATE_LOO(2, label_set_relevance)
template __global__ void column_means<0>(const double*, std::size_t, double*);
// The training path (float, as the trainers use).
template __global__ void relu_forward<float>(const float*, float*, std::size_t);
template __global__ void relu_backward<float>(const float*, const float*, float*, std::size_t);
template __global__ void scaled_tanh_forward<float>(const float*, float*, std::size_t, double);
template __global__ void scaled_tanh_backward<float>(const float*, const float*, float*, std::size_t, double);
template __global__ void bias_add<float>(float*, const float*, std::size_t, std::size_t, std::size_t);
template __global__ void bias_grad<float>(const float*, std::size_t, std::size_t, std::size_t, float*);
template __global__ void max_pool_forward<float>(const float*, float*, std::uint32_t*, std::size_t, std::size_t,
                                                 std::size_t, std::size_t, std::size_t, std::size_t, std::size_t,
                                                 std::size_t);
template __global__ void adaptive_avg_pool_forward<float>(const float*, float*, std::size_t, std::size_t,
                                                          std::size_t, std::size_t, std::size_t);
template __global__ void adaptive_avg_pool_backward<float>(const float*, float*, std::size_t, std::size_t,
                                                           std::size_t, std::size_t, std::size_t);
template __global__ void add_relu<float>(const float*, const float*, float*, std::size_t);
template __global__ void accumulate<float>(float*, const float*, std::size_t);
template __global__ void multiply<float>(const float*, const float*, float*, std::size_t);
template __global__ void max_pool_backward<float>(const float*, const std::uint32_t*, std::size_t, float*);
template __global__ void pair_terms<float>(const float*, const std::int64_t*, const float*, const std::int32_t*,
                                           const std::uint64_t*, std::size_t, std::size_t, std::size_t, pair_params,
                                           float*, double*, double*);
template __global__ void pair_gradient<float>(const float*, const float*, const float*, const double*, std::size_t,
                                              std::size_t, double, quant_params, float*, double*);
template __global__ void scatter_rows<float>(const float*, const std::int64_t*, std::size_t, std::size_t, float*);
template __global__ void adam_step<float>(float*, const float*, float*, float*, std::size_t, float, float, float,
                                          float, float, float);
template __global__ void sgd_step<float>(float*, const float*, float*, std::size_t, double, double, double);
template __global__ void rmsprop_step<float>(float*, const float*, float*, std::size_t, double, double, double,
                                             double);
#if NMHASH_TEST_NCCL
// Data-parallel training's gradient sum.
template __global__ void sum_parts_in_order<float>(const float*, int, std::size_t, float*);
#endif
}  // namespace nmhash::gpu::kernels
