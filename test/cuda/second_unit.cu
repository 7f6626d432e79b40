// A second CUDA translation unit including the same kernel headers: the
// binary links only if every kernel and launcher has one definition.
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/cuda/pack.cuh"

void second_unit_launch(const float* x, std::size_t n, std::size_t k, std::uint64_t* codes) {
  nmhash::gpu::pack_signs(x, n, k, codes, nullptr);
}
