#include <catch2/catch.hpp>

#include <filesystem>

#include "nmhash/data/fmnist_dpsh.hpp"

TEST_CASE("fmnist-dpsh splits follow file order on synthetic labels", "[data]") {
  // 60 "train" + 30 "test" items, classes cycling 0..9.
  std::vector<std::int32_t> labels;
  for (int i = 0; i < 90; ++i) labels.push_back(i % 10);
  const auto s = nmhash::data::make_fmnist_dpsh_splits(labels, 60, 2, 5, 1);
  REQUIRE(s.query.size() == 20);
  REQUIRE(s.query.front() == 60);
  REQUIRE(s.query.back() == 79);
  REQUIRE(s.database.size() == 70);
  REQUIRE(s.train.size() == 50);
  REQUIRE(s.train_nm.size() == 40);
  REQUIRE(s.validation.size() == 10);
  // Validation = the last of each class's first five: pool indices 40..49.
  REQUIRE(s.validation.front() == 40);
  REQUIRE(s.validation.back() == 49);
  REQUIRE_THROWS_WITH(nmhash::data::make_fmnist_dpsh_splits(labels, 60, 4, 5, 1), Catch::Contains("class 0 has only 3 test images"));
}

TEST_CASE("fmnist-dpsh on the real Fashion-MNIST files", "[data][fmnist]") {
  if (!std::filesystem::exists(std::string(nmhash::data::default_fashion_mnist_dir) + "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  const auto pool = nmhash::data::load_fashion_mnist_pool();
  REQUIRE(pool.size() == 70000);
  const auto s = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
  REQUIRE(s.query.size() == 1000);
  REQUIRE(s.database.size() == 69000);
  REQUIRE(s.train.size() == 5000);
  REQUIRE(s.train_nm.size() == 4800);
  REQUIRE(s.validation.size() == 200);
  std::array<int, 10> per_class{};
  for (std::size_t i : s.query) {
    REQUIRE(i >= 60000);
    ++per_class[static_cast<std::size_t>(pool.labels[i])];
  }
  for (int c : per_class) REQUIRE(c == 100);
  REQUIRE_THROWS_WITH(nmhash::data::load_fashion_mnist_pool("/nonexistent"), Catch::Contains("/nonexistent/train-images-idx3-ubyte.gz: cannot open"));
}
