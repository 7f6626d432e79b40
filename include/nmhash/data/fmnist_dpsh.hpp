// The fmnist-dpsh evaluation protocol (shared/protocol.md): Fashion-MNIST's
// 70,000 images as one pool (60,000 train then 10,000 test, file order),
// split by file order alone into queries Q (first 100 test images of each
// class), database D (the pool minus Q), training set T (first 500 train
// images of each class), and for NMLayer runs T' (first 480 of each class of
// T) and V (the remaining 20).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/io/idx.hpp"

namespace nmhash::data {

inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
inline constexpr float fmnist_mean = 0.2860f;
inline constexpr float fmnist_std = 0.3530f;

struct image_pool {
  std::size_t rows = 28, cols = 28;
  std::vector<std::uint8_t> pixels;  // N x rows x cols
  std::vector<std::int32_t> labels;  // N
  std::size_t size() const { return labels.size(); }
};

struct fmnist_dpsh_splits {
  std::vector<std::size_t> query;       // Q, 1,000 pool indices
  std::vector<std::size_t> database;    // D, 69,000
  std::vector<std::size_t> train;       // T, 5,000
  std::vector<std::size_t> train_nm;    // T', 4,800
  std::vector<std::size_t> validation;  // V, 200
};

inline image_pool load_fashion_mnist_pool(const std::string& dir = default_fashion_mnist_dir) {
  auto join = [&](const char* f) { return dir + "/" + f; };
  image_pool pool;
  std::size_t offset_rows = 0;
  for (const char* part : {"train", "t10k"}) {
    const std::string base = std::string(part);
    const io::idx_array img = io::read_idx(join((base + "-images-idx3-ubyte.gz").c_str()), 3);
    const io::idx_array lab = io::read_idx(join((base + "-labels-idx1-ubyte.gz").c_str()), 1);
    require(img.shape[0] == lab.shape[0], dir, ": ", base, " has ", img.shape[0], " images but ",
            lab.shape[0], " labels");
    require(img.shape[1] == 28 && img.shape[2] == 28, dir, ": ", base, " images are ",
            img.shape[1], "x", img.shape[2], ", expected 28x28");
    for (std::uint8_t l : lab.data)
      require(l < 10, dir, ": ", base, " label ", int(l), " outside 0..9");
    pool.pixels.insert(pool.pixels.end(), img.data.begin(), img.data.end());
    pool.labels.insert(pool.labels.end(), lab.data.begin(), lab.data.end());
    offset_rows += img.shape[0];
  }
  require(offset_rows == 70000, dir, ": expected 70,000 images (60,000 + 10,000), found ",
          offset_rows);
  return pool;
}

// The protocol's splits from the pool's labels (train part first: the first
// `train_size` entries).
inline fmnist_dpsh_splits make_fmnist_dpsh_splits(const std::vector<std::int32_t>& labels,
                                                  std::size_t train_size = 60000,
                                                  std::size_t query_per_class = 100,
                                                  std::size_t train_per_class = 500,
                                                  std::size_t validation_per_class = 20) {
  require(validation_per_class <= train_per_class,
          "make_fmnist_dpsh_splits: more validation than training images per class");
  fmnist_dpsh_splits s;
  std::array<std::size_t, 10> q_taken{}, t_taken{};
  std::vector<char> in_query(labels.size(), 0);
  for (std::size_t i = train_size; i < labels.size(); ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (q_taken[c] < query_per_class) {
      ++q_taken[c];
      in_query[i] = 1;
    }
  }
  for (std::size_t c = 0; c < 10; ++c)
    require(q_taken[c] == query_per_class, "make_fmnist_dpsh_splits: class ", c, " has only ",
            q_taken[c], " test images");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (in_query[i])
      s.query.push_back(i);
    else
      s.database.push_back(i);
  }
  for (std::size_t i = 0; i < train_size; ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (t_taken[c] < train_per_class) {
      s.train.push_back(i);
      if (t_taken[c] < train_per_class - validation_per_class)
        s.train_nm.push_back(i);
      else
        s.validation.push_back(i);
      ++t_taken[c];
    }
  }
  for (std::size_t c = 0; c < 10; ++c)
    require(t_taken[c] == train_per_class, "make_fmnist_dpsh_splits: class ", c, " has only ",
            t_taken[c], " train images");
  return s;
}

}  // namespace nmhash::data
