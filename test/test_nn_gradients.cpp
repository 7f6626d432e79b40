// Finite-difference gradient checks in double for every layer: the loss is
// L = sum(g * layer(x)) for a fixed random g, so dL/dy = g; backward(g) must
// match central differences of L with respect to the input and to every
// parameter.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "nmhash/nn/basic_block.hpp"
#include "nmhash/nn/batch_norm2d.hpp"
#include "nmhash/nn/adaptive_avg_pool2d.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "finite_difference.hpp"

using nmhash::shape4;
using nmhash::tensor;
using nmhash::nn::layer;

namespace {

// Checks backward() of `l` on input shape `in` against central differences.
void check_gradients(layer<double>& l, shape4 in, std::uint64_t seed, double h = 1e-6) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> normal;
  std::vector<double> params(l.parameter_count()), grads(l.parameter_count(), 0.0);
  l.bind(params.data(), grads.data());
  l.initialize(g);
  for (auto& p : params) p += 0.1 * normal(g);  // biases away from 0 too
  tensor<double> x(in);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  tensor<double> y;
  l.forward(x, y, true);
  tensor<double> up(y.shape());
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = normal(g);
  tensor<double> dx;
  l.backward(up, dx);
  REQUIRE(dx.shape() == x.shape());

  auto loss = [&](tensor<double>& input) {
    tensor<double> out;
    l.forward(input, out, true);
    double s = 0;
    for (std::size_t i = 0; i < out.size(); ++i) s += up[i] * out[i];
    return s;
  };
  const auto at_x = [&] { return loss(x); };
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO(l.name() << ": input element " << i);
    REQUIRE(dx[i] == Catch::Detail::Approx(central_difference(x[i], at_x, h)).epsilon(1e-6).margin(1e-7));
  }
  for (std::size_t p = 0; p < params.size(); ++p) {
    INFO(l.name() << ": parameter " << p);
    REQUIRE(grads[p] == Catch::Detail::Approx(central_difference(params[p], at_x, h)).epsilon(1e-6).margin(1e-7));
  }
}

}  // namespace

TEST_CASE("linear: gradients, batch 1 and batch 3", "[nn][grad]") {
  nmhash::nn::linear<double> l(5, 4);
  check_gradients(l, shape4{1, 5}, 1);
  check_gradients(l, shape4{3, 5}, 2);
  // A (N, C, H, W) input is read as (N, C H W).
  nmhash::nn::linear<double> l2(12, 2);
  check_gradients(l2, shape4{2, 3, 2, 2}, 3);
  tensor<double> bad(shape4{2, 6}), y;
  REQUIRE_THROWS_WITH(l.forward(bad, y, true), Catch::Contains("has 6 features per sample, expected 5"));
}

TEST_CASE("conv2d: gradients with stride, padding and non-square shapes", "[nn][grad]") {
  using nmhash::nn::conv2d;
  using nmhash::nn::conv2d_options;
  conv2d<double> a(2, 3, conv2d_options{3, 3, 1, 0});
  check_gradients(a, shape4{1, 2, 5, 6}, 4);
  conv2d<double> b(3, 2, conv2d_options{3, 2, 2, 1});
  check_gradients(b, shape4{2, 3, 7, 5}, 5);
  conv2d<double> c(1, 2, conv2d_options{5, 5, 1, 2});
  check_gradients(c, shape4{1, 1, 6, 4}, 6);
  // A batch over several blocks of the summed weight gradient, the last one partial.
  conv2d<double> d(2, 2, conv2d_options{3, 3, 1, 1});
  check_gradients(d, shape4{37, 2, 4, 3}, 7);
  tensor<double> bad(shape4{1, 3, 5, 5}), y;
  REQUIRE_THROWS_WITH(a.forward(bad, y, true), Catch::Contains("is not (N, 2, H, W)"));
}

TEST_CASE("conv2d: the same gradients on any thread count, without the input gradient and after an evaluation pass", "[nn]") {
  using nmhash::nn::conv2d;
  using nmhash::nn::conv2d_options;
  std::mt19937_64 g(9);
  std::normal_distribution<float> normal;
  tensor<float> x(shape4{45, 3, 9, 9}), up(shape4{45, 4, 5, 5});
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = normal(g);
  auto run = [&](int threads, bool input_gradient, tensor<float>& dx, bool training = true) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    conv2d<float> c(3, 4, conv2d_options{3, 3, 2, 1});
    std::vector<float> params(c.parameter_count()), grads(c.parameter_count(), 0.0f);
    c.bind(params.data(), grads.data());
    std::mt19937_64 init(3);
    c.initialize(init);
    c.set_input_gradient(input_gradient);
    tensor<float> y;
    c.forward(x, y, training);
    c.backward(up, dx);
    return grads;
  };
#if defined(_OPENMP)
  const int before = omp_get_max_threads();
#endif
  tensor<float> dx1, dx2, none, dx4;
  const auto g1 = run(1, true, dx1), g2 = run(2, true, dx2), g3 = run(2, false, none);
  // After a forward pass in evaluation mode, which keeps no columns,
  // backward makes them again: the same gradients.
  const auto g4 = run(2, true, dx4, false);
#if defined(_OPENMP)
  omp_set_num_threads(before);
#endif
  REQUIRE(g1 == g2);  // bit for bit
  REQUIRE(g1 == g3);
  REQUIRE(g1 == g4);
  REQUIRE(dx1.shape() == x.shape());
  for (std::size_t i = 0; i < dx1.size(); ++i) REQUIRE(dx1[i] == dx2[i]);
  for (std::size_t i = 0; i < dx1.size(); ++i) REQUIRE(dx1[i] == dx4[i]);
  REQUIRE(none.size() == 0);  // left untouched
}

TEST_CASE("conv2d: forward equals a direct convolution", "[nn]") {
  nmhash::nn::conv2d<double> c(2, 3, nmhash::nn::conv2d_options{3, 2, 2, 1});
  std::vector<double> params(c.parameter_count()), grads(c.parameter_count());
  c.bind(params.data(), grads.data());
  std::mt19937_64 g(7);
  std::normal_distribution<double> normal;
  for (auto& p : params) p = normal(g);
  tensor<double> x(shape4{2, 2, 6, 5}), y;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(g);
  c.forward(x, y, false);
  REQUIRE(y.shape() == (shape4{2, 3, 3, 3}));
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t o = 0; o < 3; ++o)
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) {
          double s = params[3 * 2 * 3 * 2 + o];
          for (std::size_t ci = 0; ci < 2; ++ci)
            for (std::size_t a = 0; a < 3; ++a)
              for (std::size_t b = 0; b < 2; ++b) {
                const long r = static_cast<long>(i * 2 + a) - 1, q = static_cast<long>(j * 2 + b) - 1;
                if (r < 0 || q < 0 || r >= 6 || q >= 5) continue;
                s += params[((o * 2 + ci) * 3 + a) * 2 + b] *
                     x[((n * 2 + ci) * 6 + static_cast<std::size_t>(r)) * 5 + static_cast<std::size_t>(q)];
              }
          REQUIRE(y[((n * 3 + o) * 3 + i) * 3 + j] == Catch::Detail::Approx(s).epsilon(1e-12));
        }
}

TEST_CASE("relu, max_pool2d and flatten: gradients", "[nn][grad]") {
  nmhash::nn::relu<double> r;
  check_gradients(r, shape4{2, 7}, 8);
  nmhash::nn::max_pool2d<double> p(2);
  check_gradients(p, shape4{2, 3, 4, 6}, 9);
  nmhash::nn::max_pool2d<double> p3(3, 2);
  check_gradients(p3, shape4{1, 2, 7, 5}, 10);
  nmhash::nn::flatten<double> f;
  check_gradients(f, shape4{2, 2, 3, 3}, 11);
}

TEST_CASE("batch_norm2d: gradients in training mode, over channels and over features", "[nn][grad]") {
  nmhash::nn::batch_norm2d<double> b(3);
  check_gradients(b, shape4{2, 3, 3, 2}, 12);
  nmhash::nn::batch_norm2d<double> b1(4);
  check_gradients(b1, shape4{5, 4}, 13);
}

TEST_CASE("batch_norm2d: PyTorch's running statistics, evaluation mode, and any thread count", "[nn]") {
  const std::size_t n = 3, c = 2, hw = 4;
  std::mt19937_64 g(14);
  std::normal_distribution<double> normal;
  std::vector<double> params(4), grads(4, 0.0);
  nmhash::nn::batch_norm2d<double> b(c);
  b.bind(params.data(), grads.data());
  b.initialize(g);
  params = {1.5, -0.5, 0.25, 2.0};  // weight, bias
  tensor<double> x(shape4{n, c, 2, 2}), y;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 3 + 2 * normal(g);
  // Two training steps: running = 0.9 running + 0.1 batch (unbiased variance).
  double rm[2] = {0, 0}, rv[2] = {1, 1};
  for (int step = 0; step < 2; ++step) {
    b.forward(x, y, true);
    for (std::size_t ch = 0; ch < c; ++ch) {
      double sum = 0, sq = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < hw; ++j) sum += x[(i * c + ch) * hw + j];
      const double mean = sum / (n * hw);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < hw; ++j) sq += (x[(i * c + ch) * hw + j] - mean) * (x[(i * c + ch) * hw + j] - mean);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < hw; ++j) {
          const double want = (x[(i * c + ch) * hw + j] - mean) / std::sqrt(sq / (n * hw) + 1e-5) * params[ch] + params[c + ch];
          REQUIRE(y[(i * c + ch) * hw + j] == Catch::Detail::Approx(want).epsilon(1e-12));
        }
      rm[ch] = 0.9 * rm[ch] + 0.1 * mean;
      rv[ch] = 0.9 * rv[ch] + 0.1 * sq / (n * hw - 1);
    }
  }
  const auto bufs = b.buffers();
  REQUIRE(bufs.size() == 2);
  REQUIRE(bufs[0].first == "running_mean");
  REQUIRE(bufs[1].first == "running_var");
  for (std::size_t ch = 0; ch < c; ++ch) {
    REQUIRE((*bufs[0].second)[ch] == Catch::Detail::Approx(rm[ch]).epsilon(1e-12));
    REQUIRE((*bufs[1].second)[ch] == Catch::Detail::Approx(rv[ch]).epsilon(1e-12));
  }
  // Evaluation: the running statistics, which it leaves alone; its input
  // gradient is the per-channel scale.
  b.forward(x, y, false);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t ch = (i / hw) % c;
    REQUIRE(y[i] == Catch::Detail::Approx((x[i] - rm[ch]) / std::sqrt(rv[ch] + 1e-5) * params[ch] + params[c + ch])
                         .epsilon(1e-12));
  }
  REQUIRE((*bufs[0].second)[0] == Catch::Detail::Approx(rm[0]).epsilon(1e-12));
  tensor<double> up(y.shape()), dx;
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = normal(g);
  b.backward(up, dx);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t ch = (i / hw) % c;
    REQUIRE(dx[i] == Catch::Detail::Approx(up[i] * params[ch] / std::sqrt(rv[ch] + 1e-5)).epsilon(1e-12));
  }
#if defined(_OPENMP)
  // float, 1 and 2 threads: the same bits.
  const auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> p(2 * 16), gr(2 * 16, 0.0f);
    nmhash::nn::batch_norm2d<float> bf(16);
    bf.bind(p.data(), gr.data());
    std::mt19937_64 gf(15);
    bf.initialize(gf);
    tensor<float> xf(shape4{4, 16, 5, 5}), yf, df;
    std::normal_distribution<float> nf;
    for (std::size_t i = 0; i < xf.size(); ++i) xf[i] = nf(gf);
    bf.forward(xf, yf, true);
    bf.backward(xf, df);
    std::vector<float> out(yf.data(), yf.data() + yf.size());
    out.insert(out.end(), df.data(), df.data() + df.size());
    out.insert(out.end(), gr.begin(), gr.end());
    out.insert(out.end(), bf.buffers()[1].second->begin(), bf.buffers()[1].second->end());
    return out;
  };
  const int keep = omp_get_max_threads();
  const auto one = run(1), two = run(2);
  omp_set_num_threads(keep);
  REQUIRE(one == two);
#endif
}

TEST_CASE("ResNet's pieces: gradients of the basic and bottleneck blocks (with and without the downsample path), "
          "padded max-pooling, adaptive average pooling, "
          "and a convolution without bias",
          "[nn][grad]") {
  auto same = nmhash::nn::basic_block<double>(3, 3);
  check_gradients(same, shape4{2, 3, 4, 4}, 16);
  auto down = nmhash::nn::basic_block<double>(2, 4, 2);
  check_gradients(down, shape4{3, 2, 5, 5}, 17);
  REQUIRE(down.buffers().size() == 6);  // bn1, bn2, downsample.1: running mean and variance
  auto bottle = nmhash::nn::bottleneck_block<double>(3, 2, 2);  // to 8 channels
  check_gradients(bottle, shape4{2, 3, 5, 5}, 21);
  REQUIRE(bottle.output_shape(shape4{2, 3, 5, 5}) == shape4{2, 8, 3, 3});
  auto bottle_same = nmhash::nn::bottleneck_block<double>(8, 2);  // no downsample path
  check_gradients(bottle_same, shape4{2, 8, 3, 3}, 22);
  REQUIRE(bottle_same.buffers().size() == 6);
  nmhash::nn::max_pool2d<double> padded(3, 2, 1);
  check_gradients(padded, shape4{2, 2, 5, 6}, 18);
  REQUIRE(padded.output_shape(shape4{1, 1, 5, 6}) == shape4{1, 1, 3, 3});
  nmhash::nn::adaptive_avg_pool2d<double> gap;
  check_gradients(gap, shape4{2, 3, 3, 4}, 19);
  nmhash::nn::adaptive_avg_pool2d<double> uneven(3, 3);  // bins of 1 and 2 rows, overlapping columns
  check_gradients(uneven, shape4{2, 2, 5, 4}, 23);
  nmhash::nn::adaptive_avg_pool2d<double> spread(4, 4);  // a 2 x 3 map over 4 x 4 cells
  check_gradients(spread, shape4{1, 2, 2, 3}, 24);
  nmhash::nn::conv2d<double> nobias(2, 3, nmhash::nn::conv2d_options{3, 3, 2, 1, false});
  REQUIRE(nobias.parameter_count() == 3 * 2 * 9);
  check_gradients(nobias, shape4{2, 2, 5, 5}, 20);
}
