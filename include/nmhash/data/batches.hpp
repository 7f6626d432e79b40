// Turning the image pool into network inputs: normalised NCHW batches
// (pixels / 255, then (x - mean) / std) and the seeded shuffled order of
// each epoch (a function of seed and epoch alone, so a resumed run sees the
// same batches).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "nmhash/core/tensor.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"

namespace nmhash::data {

// Fills x with the images pool[idx[first .. first + n)] as (n, 1, rows, cols).
template <class T>
void gather_images(const image_pool& pool, const std::vector<std::size_t>& idx, std::size_t first,
                   std::size_t n, tensor<T>& x, float mean = fmnist_mean, float stddev = fmnist_std) {
  const std::size_t px = pool.rows * pool.cols;
  x.resize(shape4{n, 1, pool.rows, pool.cols});
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* src = pool.pixels.data() + idx[first + i] * px;
    for (std::size_t p = 0; p < px; ++p)
      x[i * px + p] = static_cast<T>((static_cast<float>(src[p]) / 255.0f - mean) / stddev);
  }
}

// The order in which epoch `epoch` visits n training items.
inline std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::size_t epoch) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 gen(seed * 0x9E3779B97F4A7C15ULL + epoch);
  std::shuffle(order.begin(), order.end(), gen);
  return order;
}

}  // namespace nmhash::data
