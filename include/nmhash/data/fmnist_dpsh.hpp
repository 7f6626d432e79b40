// The fmnist-dpsh evaluation protocol (shared/protocol.md): Fashion-MNIST's
// 70,000 images as one pool (60,000 train then 10,000 test, file order),
// split by file order alone into queries Q (first 100 test images of each
// class), database D (the pool minus Q), training set T (first 500 train
// images of each class), and for NMLayer runs T' (first 480 of each class of
// T) and V (the remaining 20).
#pragma once

#include <memory>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/data/dataset.hpp"
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

// The DPSH split of a pool of `num_classes` classes whose first
// `train_size` images are the training part and the rest the test part
// (Fashion-MNIST and CIFAR-10 alike): queries are the first
// `query_per_class` test images of each class, the database is the pool
// minus the queries, the training set the first `train_per_class` training
// images of each class, of which the last `validation_per_class` form V.
inline fmnist_dpsh_splits make_dpsh_splits(const std::vector<std::int32_t>& labels, std::size_t train_size,
                                           std::size_t num_classes, std::size_t query_per_class = 100,
                                           std::size_t train_per_class = 500, std::size_t validation_per_class = 20) {
  require(validation_per_class <= train_per_class, "make_dpsh_splits: more validation than training images per class");
  require(train_size <= labels.size(), "make_dpsh_splits: training part of ", train_size, " in a pool of ",
          labels.size());
  fmnist_dpsh_splits s;
  std::vector<std::size_t> q_taken(num_classes, 0), t_taken(num_classes, 0);
  for (std::size_t i = 0; i < labels.size(); ++i)
    require(labels[i] >= 0 && static_cast<std::size_t>(labels[i]) < num_classes, "make_dpsh_splits: label ",
            labels[i], " of image ", i, " outside 0..", num_classes - 1);
  std::vector<char> in_query(labels.size(), 0);
  for (std::size_t i = train_size; i < labels.size(); ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (q_taken[c] < query_per_class) {
      ++q_taken[c];
      in_query[i] = 1;
    }
  }
  for (std::size_t c = 0; c < num_classes; ++c)
    require(q_taken[c] == query_per_class, "make_dpsh_splits: class ", c, " has only ", q_taken[c],
            " test images, the split takes ", query_per_class);
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
  for (std::size_t c = 0; c < num_classes; ++c)
    require(t_taken[c] == train_per_class, "make_dpsh_splits: class ", c, " has only ", t_taken[c],
            " training images, the split takes ", train_per_class);
  return s;
}

// The fmnist-dpsh protocol's splits from the pool's labels (train part
// first: the first `train_size` entries).
inline fmnist_dpsh_splits make_fmnist_dpsh_splits(const std::vector<std::int32_t>& labels,
                                                  std::size_t train_size = 60000,
                                                  std::size_t query_per_class = 100,
                                                  std::size_t train_per_class = 500,
                                                  std::size_t validation_per_class = 20) {
  return make_dpsh_splits(labels, train_size, 10, query_per_class, train_per_class, validation_per_class);
}

// A DPSH-split pool as a retrieval_split over a memory_source.
inline retrieval_split dpsh_retrieval_split(std::string name, image_shape shape, std::vector<std::uint8_t> pixels,
                                            std::vector<std::int32_t> ids, std::size_t train_size,
                                            std::size_t num_classes) {
  const auto sp = make_dpsh_splits(ids, train_size, num_classes);
  retrieval_split r;
  r.name = std::move(name);
  r.pool = std::make_shared<memory_source>(shape, std::move(pixels), nmhash::labels::single(std::move(ids)), num_classes);
  r.train = sp.train;
  r.query = sp.query;
  r.database = sp.database;
  r.train_nm = sp.train_nm;
  r.validation = sp.validation;
  return r;
}

// fmnist-dpsh as a retrieval_split (1 x 28 x 28 grey images).
inline retrieval_split fmnist_dpsh(const std::string& dir = default_fashion_mnist_dir) {
  image_pool pool = load_fashion_mnist_pool(dir);
  return dpsh_retrieval_split("fmnist-dpsh", image_shape{1, pool.rows, pool.cols}, std::move(pool.pixels),
                              std::move(pool.labels), 60000, 10);
}

// The protocol's input transform: pixels / 255 normalised by the
// Fashion-MNIST mean and standard deviation, no crop or flip.
inline transform_options fmnist_transform() {
  transform_options t;
  t.channels = 1;
  t.height = t.width = 28;
  t.mean = {fmnist_mean};
  t.stddev = {fmnist_std};
  return t;
}

}  // namespace nmhash::data
