// Layers without closed-form references (dropout, local response
// normalisation), the sequential container, and the optimizers' steps
// against values computed by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "nmhash/nn/basic_block.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/local_response_norm.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/sequential.hpp"
#include "nmhash/optim/adam.hpp"
#include "nmhash/optim/rmsprop.hpp"
#include "nmhash/optim/sgd.hpp"
#include "finite_difference.hpp"

using Catch::Detail::Approx;
using nmhash::shape4;
using nmhash::tensor;

TEST_CASE("dropout: scaled mask in training, identity in evaluation", "[nn]") {
  nmhash::nn::dropout<double> d(0.25, 3);
  tensor<double> x(shape4{4, 50}, 2.0), y, dx;
  d.forward(x, y, true);
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    REQUIRE((y[i] == 0.0 || y[i] == Approx(2.0 / 0.75)));
    zeros += y[i] == 0.0;
  }
  REQUIRE(zeros > 20);
  REQUIRE(zeros < 80);
  tensor<double> g(y.shape(), 1.0);
  d.backward(g, dx);
  for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(dx[i] == Approx(y[i] / 2.0));
  d.forward(x, y, false);
  for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == 2.0);
  REQUIRE_THROWS_AS(nmhash::nn::dropout<double>(1.0), nmhash::error);
}

TEST_CASE("local_response_norm: forward and finite-difference gradients", "[nn][grad]") {
  nmhash::nn::local_response_norm<double> l(3, 0.5, 0.75, 2.0);
  std::mt19937_64 g(1);
  std::normal_distribution<double> normal;
  tensor<double> x(shape4{2, 5, 2, 3}), y, dx;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  l.forward(x, y, true);
  // Channel 0's window is channels 0..1 (size 3, clipped).
  const double s0 = 2.0 + 0.5 / 3 * (x[0] * x[0] + x[6] * x[6]);
  REQUIRE(y[0] == Approx(x[0] * std::pow(s0, -0.75)));
  tensor<double> up(y.shape());
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = normal(g);
  l.backward(up, dx);
  const auto loss = [&] {
    tensor<double> out;
    l.forward(x, out, true);
    double s = 0;
    for (std::size_t j = 0; j < out.size(); ++j) s += up[j] * out[j];
    return s;
  };
  for (std::size_t i = 0; i < x.size(); ++i)
    REQUIRE(dx[i] == Approx(central_difference(x[i], loss)).epsilon(1e-6).margin(1e-8));
}

TEST_CASE("pytorch_default initialisation: PyTorch's bounds for weights and biases, set through blocks", "[nn]") {
  using namespace nmhash::nn;
  // The layout of each parameter range: weights, then biases where there are.
  struct expected {
    std::size_t fan_in, weights, biases;
  };
  sequential<double> net;
  net.add(conv2d<double>(3, 16, conv2d_options{5, 5, 1, 2}));  // fan-in 75
  net.add(basic_block<double>(16, 32, 2));  // three convolutions without bias (fan-in 144, 288, 16) and two batch norms
  net.add(flatten<double>());
  net.add(linear<double>(32 * 4 * 4, 200));  // fan-in 512
  net.build(shape4{2, 3, 8, 8});
  const auto draw = [&](init_scheme s) {
    net.set_init(s);
    net.initialize(7);
    return net.parameters();
  };
  const auto kaiming = draw(init_scheme::kaiming_normal);
  const auto torch = draw(init_scheme::pytorch_default);
  // Every weight and bias in +-1/sqrt(fan_in), with the spread of a uniform
  // draw; kaiming's biases are zero and its weights wider.
  std::size_t off = 0;
  const auto check = [&](std::size_t fan_in, std::size_t n, bool bias) {
    const double bound = 1 / std::sqrt(static_cast<double>(fan_in));
    double sum2 = 0, k2 = 0;
    for (std::size_t i = off; i < off + n; ++i) {
      REQUIRE(std::abs(torch[i]) <= bound);
      sum2 += torch[i] * torch[i];
      k2 += kaiming[i] * kaiming[i];
      if (bias) REQUIRE(kaiming[i] == 0.0);
    }
    const double rms = std::sqrt(sum2 / static_cast<double>(n));
    REQUIRE(rms == Approx(bound / std::sqrt(3.0)).epsilon(n >= 500 ? 0.1 : 0.35));
    if (!bias) REQUIRE(std::sqrt(k2 / static_cast<double>(n)) > 2 * rms);
    off += n;
  };
  check(75, 16 * 75, false);
  check(75, 16, true);
  check(144, 32 * 144, false);
  off += 2 * 32;  // batch norm: weight one, bias zero under either scheme
  check(288, 32 * 288, false);
  off += 2 * 32;
  check(16, 32 * 16, false);
  off += 2 * 32;
  check(512, 200 * 512, false);
  check(512, 200, true);
  REQUIRE(off == torch.size());
}

TEST_CASE("sequential: shapes, flat parameters, groups, forward and backward", "[nn]") {
  using namespace nmhash::nn;
  sequential<double> net;
  net.add(conv2d<double>(1, 2, conv2d_options{3, 3, 1, 0}));
  net.add(relu<double>());
  net.add(max_pool2d<double>(2));
  net.add(flatten<double>());
  net.add(linear<double>(2 * 3 * 3, 4), 1);
  net.build(shape4{3, 1, 8, 8});
  REQUIRE(net.output_shape() == (shape4{3, 4}));
  REQUIRE(net.parameters().size() == (2 * 9 + 2) + (18 * 4 + 4));
  REQUIRE(net.ranges().size() == 2);
  REQUIRE(net.ranges()[1].group == 1);
  REQUIRE(net.ranges()[1].offset == 20);
  net.initialize(42);
  nmhash::aligned_vector<double> first = net.parameters();
  net.initialize(42);
  REQUIRE(net.parameters() == first);

  std::mt19937_64 g(2);
  std::normal_distribution<double> normal;
  tensor<double> x(shape4{3, 1, 8, 8});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  tensor<double> up(shape4{3, 4});
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = normal(g);
  auto loss = [&] {
    const tensor<double>& y = net.forward(x, true);
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += up[i] * y[i];
    return s;
  };
  loss();
  net.zero_grad();
  const tensor<double>& dx = net.backward(up);
  REQUIRE(dx.shape() == x.shape());
  const nmhash::aligned_vector<double> grads = net.gradients();
  for (std::size_t p = 0; p < net.parameters().size(); p += 7)
    REQUIRE(grads[p] == Approx(central_difference(net.parameters()[p], loss)).epsilon(1e-5).margin(1e-7));
  sequential<double> bad;
  bad.add(linear<double>(5, 2));
  REQUIRE_THROWS_WITH(bad.build(shape4{2, 4}), Catch::Contains("expected 5"));
}

TEST_CASE("optimizers: steps equal hand-computed values, per-group learning rates", "[optim]") {
  const std::vector<nmhash::nn::parameter_range> ranges{{0, 1, 0}, {1, 1, 1}};
  nmhash::optim::group_table groups{{{0.1, 0.0}, {0.01, 0.5}}, {}};
  SECTION("sgd with momentum and weight decay") {
    nmhash::aligned_vector<double> p{1.0, 2.0}, g{0.5, -1.0};
    nmhash::optim::sgd<double> opt(0.9, groups);
    opt.step(p, g, ranges);
    // p0: d = 0.5, v = 0.5, p = 1 - 0.1 * 0.5 = 0.95
    // p1: d = -1 + 0.5 * 2 = 0, v = 0, p = 2
    REQUIRE(p[0] == Approx(0.95));
    REQUIRE(p[1] == Approx(2.0));
    opt.step(p, g, ranges);
    // p0: v = 0.9 * 0.5 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855
    // p1: d = -1 + 0.5 * 2 = 0, v = 0
    REQUIRE(p[0] == Approx(0.855));
    REQUIRE(p[1] == Approx(2.0));
  }
  SECTION("rmsprop") {
    nmhash::aligned_vector<double> p{1.0, 2.0}, g{0.5, -1.0};
    nmhash::optim::rmsprop<double> opt(groups, 0.9, 1e-8);
    opt.step(p, g, ranges);
    // p0: s = 0.1 * 0.25 = 0.025, p = 1 - 0.1 * 0.5 / (sqrt(0.025) + eps)
    REQUIRE(p[0] == Approx(1.0 - 0.1 * 0.5 / (std::sqrt(0.025) + 1e-8)));
    // p1: g = -1 + 1 = 0 -> unchanged
    REQUIRE(p[1] == Approx(2.0));
  }
  SECTION("adam") {
    nmhash::aligned_vector<double> p{1.0, 2.0}, g{0.5, -1.0};
    nmhash::optim::adam<double> opt(groups, 0.9, 0.999, 1e-8);
    opt.step(p, g, ranges);
    // First step: m / (1 - b1) = g, v / (1 - b2) = g^2 -> p -= lr * g / (|g| + eps)
    REQUIRE(p[0] == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)));
    opt.step(p, g, ranges);
    const double m = 0.9 * 0.05 + 0.1 * 0.5, v = 0.999 * 0.00025 + 0.001 * 0.25;
    const double expect = (1.0 - 0.1 * 0.5 / (0.5 + 1e-8)) -
                          0.1 * (m / (1 - 0.81)) / (std::sqrt(v / (1 - 0.999 * 0.999)) + 1e-8);
    REQUIRE(p[0] == Approx(expect));
    REQUIRE(opt.steps() == 2);
  }
}

#if defined(_OPENMP)
#include <omp.h>

#include "nmhash/loss/registry.hpp"
#include "nmhash/nn/arch.hpp"

// Everything a training step computes, for one thread count: lenet's
// output, every loss's value and output gradient, and the parameter
// gradients. Eigen's parallel matrix products block their inner dimension
// by the thread count; nmhash's layers and losses must not let that show.
std::vector<float> training_step_bits(int threads, std::size_t batch) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network(net, *nmhash::nn::find_architecture("lenet"), 48, batch);
  net.initialize(5);
  std::mt19937_64 g(6);
  std::normal_distribution<float> normal;
  tensor<float> x(shape4{batch, 1, 28, 28});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  const tensor<float>& u = net.forward(x, true);
  std::vector<float> out(u.data(), u.data() + u.size());
  std::vector<std::int32_t> ids(300);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i % 7);
  nmhash::loss::memory_bank<float> bank(nmhash::labels::single(ids), 48);
  tensor<float> all(shape4{300, 48});
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = normal(g);
  std::vector<std::size_t> every(300), idx(batch);
  for (std::size_t i = 0; i < 300; ++i) every[i] = i;
  for (std::size_t i = 0; i < batch; ++i) idx[i] = (i * 37) % 300;
  bank.update(all, every);
  tensor<float> du;
  const nmhash::loss::loss_settings set{0.1, 12, 0.1, 0};
  for (const auto& name : nmhash::loss::loss_names()) {
    out.push_back(static_cast<float>(nmhash::loss::loss_by_name<float>(name, set)(u, idx, bank, du)));
    out.insert(out.end(), du.data(), du.data() + du.size());
  }
  net.zero_grad();
  net.backward(du);
  out.insert(out.end(), net.gradients().begin(), net.gradients().end());
  omp_set_num_threads(saved);
  return out;
}

TEST_CASE("a training step gives the same bits for every thread count", "[nn][threads]") {
  for (std::size_t batch : {1, 2, 40}) {
    INFO("batch " << batch);
    const auto one = training_step_bits(1, batch);
    for (int t : {2, 3, 8}) {
      INFO(t << " threads");
      const auto many = training_step_bits(t, batch);
      REQUIRE(many.size() == one.size());
      REQUIRE(std::memcmp(many.data(), one.data(), one.size() * sizeof(float)) == 0);
    }
  }
}
#endif
