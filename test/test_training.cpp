// A seconds-long end-to-end training run on a tiny subset of Fashion-MNIST:
// the loss falls, MAP rises above its value at initialisation, and the same
// seed gives the same parameters. Skipped where the data set is missing.
#include <catch2/catch.hpp>

#include <filesystem>

#include "nmhash/data/batches.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"
#include "nmhash/nmhash.hpp"
#include "nmhash/nn/lenet.hpp"
#include "nmhash/optim/adam.hpp"

namespace {

struct run_result {
  double first_loss, last_loss, map_before, map_after;
  nmhash::aligned_vector<float> params;
};

run_result train_tiny(std::uint64_t seed) {
  const auto pool = nmhash::data::load_fashion_mnist_pool();
  const auto split = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
  // 400 training images (40 per class: 4 per class of each of the first 10
  // batches of T order), 100 queries, 1,000 database images.
  std::vector<std::size_t> train, query(split.query.begin(), split.query.begin() + 100),
      db(split.database.begin(), split.database.begin() + 1000);
  for (std::size_t i = 0; i < split.train.size(); i += 12) train.push_back(split.train[i]);
  std::vector<std::int32_t> tl, ql, dl;
  for (auto i : train) tl.push_back(pool.labels[i]);
  for (auto i : query) ql.push_back(pool.labels[i]);
  for (auto i : db) dl.push_back(pool.labels[i]);
  const std::size_t bits = 16, batch = 64;
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_lenet(net, bits, batch);
  net.initialize(seed);
  nmhash::loss::memory_bank<float> bank(nmhash::labels::single(tl), bits);
  nmhash::optim::adam<float> opt(nmhash::optim::group_table{{}, {1e-4, 0.0}});
  auto map_now = [&] {
    auto encode = [&](const std::vector<std::size_t>& idx) {
      nmhash::packed_codes c(idx.size(), bits);
      nmhash::tensor<float> x;
      for (std::size_t b = 0; b < idx.size(); b += 250) {
        const std::size_t n = std::min<std::size_t>(250, idx.size() - b);
        nmhash::data::gather_images(pool, idx, b, n, x);
        const auto& y = net.forward(x, false);
        const auto part = nmhash::pack_signs(y.data(), n, bits);
        std::copy(part.data(), part.data() + n, c.row(b));
      }
      return c;
    };
    return nmhash::mean_average_precision(encode(query), encode(db), nmhash::labels::single(ql),
                                          nmhash::labels::single(dl))
        .tie_aware;
  };
  run_result r{};
  r.map_before = map_now();
  nmhash::tensor<float> x, du;
  for (std::size_t epoch = 0; epoch < 6; ++epoch) {
    const auto order = nmhash::data::epoch_order(train.size(), seed, epoch);
    std::vector<std::size_t> pidx(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) pidx[i] = train[order[i]];
    double sum = 0;
    std::size_t nb = 0;
    for (std::size_t b = 0; b < order.size(); b += batch) {
      const std::size_t n = std::min(batch, order.size() - b);
      nmhash::data::gather_images(pool, pidx, b, n, x);
      const std::vector<std::size_t> idx(order.begin() + static_cast<long>(b), order.begin() + static_cast<long>(b + n));
      const auto& u = net.forward(x, true);
      bank.update(u, idx);
      sum += nmhash::loss::pairwise_eq7(u, idx, bank, 10.0, du);
      ++nb;
      net.zero_grad();
      net.backward(du);
      opt.step(net.parameters(), net.gradients(), net.ranges());
    }
    if (epoch == 1) r.first_loss = sum / static_cast<double>(nb);
    r.last_loss = sum / static_cast<double>(nb);
  }
  r.map_after = map_now();
  r.params = net.parameters();
  return r;
}

}  // namespace

TEST_CASE("training lenet on a tiny subset: loss falls, MAP rises, runs repeat", "[train][fmnist]") {
  if (!std::filesystem::exists(std::string(nmhash::data::default_fashion_mnist_dir) + "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  const auto a = train_tiny(5);
  INFO("loss " << a.first_loss << " -> " << a.last_loss << ", MAP " << a.map_before << " -> " << a.map_after);
  REQUIRE(a.last_loss < a.first_loss);
  REQUIRE(a.map_after > a.map_before + 0.05);
  const auto b = train_tiny(5);
  REQUIRE(b.params.size() == a.params.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < a.params.size(); ++i) differing += a.params[i] != b.params[i];
  REQUIRE(differing == 0);
}
