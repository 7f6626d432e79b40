// CIFAR-10 in its binary version (cifar-10-batches-bin: data_batch_1.bin
// ... data_batch_5.bin and test_batch.bin, each 10,000 records of one label
// byte then 3,072 pixel bytes, the red, green and blue 32 x 32 planes) and
// its DPSH split, the NMLayer paper's first table: the pool is the 50,000
// training images then the 10,000 test images; queries are 100 test images
// per class, the training set 500 training images per class (the last 20
// of them V for NMLayer runs), the database the pool minus the queries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::data {

inline constexpr std::size_t cifar10_record = 1 + 3 * 32 * 32;

// Appends the records of one batch file (pixels as 32 x 32 x 3, interleaved).
inline void read_cifar10_batch(const std::string& path, std::vector<std::uint8_t>& pixels,
                               std::vector<std::int32_t>& labels) {
  const std::vector<unsigned char> bytes = io::read_file(path);
  require(!bytes.empty() && bytes.size() % cifar10_record == 0, path, ": ", bytes.size(),
          " bytes is not a whole number of CIFAR-10 records (", cifar10_record, " bytes each: label, R, G, B planes)");
  const std::size_t n = bytes.size() / cifar10_record, plane = 32 * 32;
  const std::size_t base = pixels.size();
  pixels.resize(base + n * 3 * plane);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* r = bytes.data() + i * cifar10_record;
    require(r[0] < 10, path, ": record ", i, " has label ", int(r[0]), ", expected 0..9");
    labels.push_back(r[0]);
    std::uint8_t* dst = pixels.data() + base + i * 3 * plane;
    for (std::size_t p = 0; p < plane; ++p)
      for (std::size_t c = 0; c < 3; ++c) dst[p * 3 + c] = r[1 + c * plane + p];
  }
}

// The pool of `dir`: data_batch_1.bin ... data_batch_5.bin then
// test_batch.bin. Returns the number of training images through train_size.
inline std::vector<std::int32_t> load_cifar10_pool(const std::string& dir, std::vector<std::uint8_t>& pixels,
                                                   std::size_t& train_size) {
  std::vector<std::int32_t> labels;
  pixels.clear();
  for (int b = 1; b <= 5; ++b) read_cifar10_batch(dir + "/data_batch_" + std::to_string(b) + ".bin", pixels, labels);
  train_size = labels.size();
  read_cifar10_batch(dir + "/test_batch.bin", pixels, labels);
  return labels;
}

// CIFAR-10 with the DPSH split (3 x 32 x 32 RGB images).
inline retrieval_split cifar10_dpsh(const std::string& dir) {
  std::vector<std::uint8_t> pixels;
  std::size_t train_size = 0;
  std::vector<std::int32_t> labels = load_cifar10_pool(dir, pixels, train_size);
  return dpsh_retrieval_split("cifar10:" + dir, image_shape{3, 32, 32}, std::move(pixels), std::move(labels),
                              train_size, 10);
}

}  // namespace nmhash::data
