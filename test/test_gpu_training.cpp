// The kernels of the GPU training path under the SIMT execution layer: the
// device layers, losses, memory bank and optimizers against their CPU
// twins in include/nmhash/.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "nmhash/cuda/loss.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/cuda/optim.cuh"
#include "nmhash/loss/dhn.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/dsh.hpp"
#include "nmhash/loss/hashnet.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"
#include "nmhash/nn/adaptive_avg_pool2d.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/optim/adam.hpp"
#include "nmhash/optim/rmsprop.hpp"
#include "nmhash/optim/sgd.hpp"

namespace {

using nmhash::gpu::device_buffer;

nmhash::tensor<float> random_tensor(nmhash::shape4 s, std::mt19937_64& g, float scale = 1.0f) {
  nmhash::tensor<float> t(s);
  std::normal_distribution<float> normal(0.0f, scale);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = normal(g);
  return t;
}

std::vector<float> to_host(const device_buffer<float>& d) {
  std::vector<float> v(d.size());
  d.copy_to(v.data());
  return v;
}

// max |a - b| relative to max(1, max |b|).
double relative_gap(const float* a, const float* b, std::size_t n) {
  double gap = 0, scale = 1;
  for (std::size_t i = 0; i < n; ++i) {
    gap = std::max(gap, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return gap / scale;
}

}  // namespace

TEST_CASE("gpu relu and scaled tanh equal the CPU layers, forward and backward", "[gpu][train][layers]") {
  std::mt19937_64 g(3);
  const auto x = random_tensor({2, 3, 5, 7}, g), dy = random_tensor({2, 3, 5, 7}, g);
  const std::size_t n = x.size();
  device_buffer<float> dx_in(x.data(), n), ddy(dy.data(), n), dy_out(n), dgrad(n);

  nmhash::nn::relu<float> relu;
  nmhash::tensor<float> y, gx;
  relu.forward(x, y, true);
  relu.backward(dy, gx);
  nmhash::gpu::relu_forward(dx_in.data(), dy_out.data(), n, nullptr);
  nmhash::gpu::relu_backward(dy_out.data(), ddy.data(), dgrad.data(), n, nullptr);
  CHECK(to_host(dy_out) == std::vector<float>(y.data(), y.data() + n));
  CHECK(to_host(dgrad) == std::vector<float>(gx.data(), gx.data() + n));

  nmhash::nn::scaled_tanh<float> th(2.5);
  th.forward(x, y, true);
  th.backward(dy, gx);
  nmhash::gpu::scaled_tanh_forward(dx_in.data(), dy_out.data(), n, 2.5, nullptr);
  nmhash::gpu::scaled_tanh_backward(dy_out.data(), ddy.data(), dgrad.data(), n, 2.5, nullptr);
  const auto hy = to_host(dy_out), hg = to_host(dgrad);
  CHECK(relative_gap(hy.data(), y.data(), n) < 1e-6);
  CHECK(relative_gap(hg.data(), gx.data(), n) < 1e-6);
}

TEST_CASE("gpu bias_add and bias_grad per channel and per feature", "[gpu][train][layers]") {
  std::mt19937_64 g(4);
  for (std::size_t hw : {1u, 6u}) {
    DYNAMIC_SECTION("HW = " << hw) {
      const std::size_t N = 3, C = 5;
      const auto y = random_tensor({N, C, hw}, g), b = random_tensor({C}, g);
      device_buffer<float> dy(y.data(), y.size()), db(b.data(), C);
      nmhash::gpu::bias_add(dy.data(), db.data(), N, C, hw, nullptr);
      const auto out = to_host(dy);
      nmhash::gpu::bias_grad(dy.data(), N, C, hw, db.data(), nullptr);  // accumulates onto b
      const auto grad = to_host(db);
      for (std::size_t c = 0; c < C; ++c) {
        double sum = 0;
        for (std::size_t s = 0; s < N; ++s)
          for (std::size_t p = 0; p < hw; ++p) {
            const std::size_t e = (s * C + c) * hw + p;
            CHECK(out[e] == y[e] + b[c]);
            sum += out[e];
          }
        CHECK(grad[c] == Approx(b[c] + sum).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("gpu max pooling equals max_pool2d, with and without overlapping windows and padding",
          "[gpu][train][layers]") {
  std::mt19937_64 g(5);
  struct pool_case {
    std::size_t k, s, pad;
  };
  for (const pool_case pc : {pool_case{2, 2, 0}, pool_case{3, 2, 0}, pool_case{2, 3, 0}, pool_case{3, 2, 1},
                             pool_case{2, 1, 1}}) {
    DYNAMIC_SECTION("kernel " << pc.k << " stride " << pc.s << " padding " << pc.pad) {
      auto x = random_tensor({2, 3, 9, 8}, g);
      x[5] = x[4];  // a tie: the first maximum takes the gradient
      nmhash::nn::max_pool2d<float> pool(pc.k, pc.s, pc.pad);
      nmhash::tensor<float> y, dx;
      pool.forward(x, y, true);
      const auto dy = random_tensor(y.shape(), g);
      pool.backward(dy, dx);
      device_buffer<float> d_x(x.data(), x.size()), d_y(y.size()), d_dy(dy.data(), dy.size()), d_dx(x.size());
      device_buffer<std::uint32_t> arg(y.size());
      nmhash::gpu::max_pool_forward(d_x.data(), d_y.data(), arg.data(), 6, 9, 8, pc.k, pc.s, pc.pad, nullptr);
      nmhash::gpu::max_pool_backward(d_dy.data(), arg.data(), y.size(), d_dx.data(), x.size(), nullptr);
      CHECK(to_host(d_y) == std::vector<float>(y.data(), y.data() + y.size()));
      const auto hdx = to_host(d_dx);
      CHECK(relative_gap(hdx.data(), dx.data(), dx.size()) < 1e-6);
    }
  }
}

TEST_CASE("gpu adaptive average pooling equals adaptive_avg_pool2d bit for bit, forward and backward",
          "[gpu][train][layers]") {
  std::mt19937_64 g(6);
  struct pool_case {
    std::size_t h, w, oh, ow;
  };
  // Global pooling, identity, shrinking with overlapping cells, growing
  // with repeated cells.
  for (const pool_case pc : {pool_case{7, 7, 1, 1}, pool_case{6, 6, 6, 6}, pool_case{7, 5, 3, 2},
                             pool_case{3, 4, 7, 6}}) {
    DYNAMIC_SECTION(pc.h << "x" << pc.w << " to " << pc.oh << "x" << pc.ow) {
      const auto x = random_tensor({2, 3, pc.h, pc.w}, g);
      nmhash::nn::adaptive_avg_pool2d<float> pool(pc.oh, pc.ow);
      nmhash::tensor<float> y, dx;
      pool.forward(x, y, true);
      const auto dy = random_tensor(y.shape(), g);
      pool.backward(dy, dx);
      device_buffer<float> d_x(x.data(), x.size()), d_y(y.size()), d_dy(dy.data(), dy.size()), d_dx(x.size());
      nmhash::gpu::adaptive_avg_pool_forward(d_x.data(), d_y.data(), 6, pc.h, pc.w, pc.oh, pc.ow, nullptr);
      nmhash::gpu::adaptive_avg_pool_backward(d_dy.data(), d_dx.data(), 6, pc.h, pc.w, pc.oh, pc.ow, nullptr);
      CHECK(to_host(d_y) == std::vector<float>(y.data(), y.data() + y.size()));
      CHECK(to_host(d_dx) == std::vector<float>(dx.data(), dx.data() + dx.size()));
    }
  }
}

TEST_CASE("gpu residual sums (add_relu, accumulate) and dropout's product equal their definitions",
          "[gpu][train][layers]") {
  std::mt19937_64 g(7);
  const auto a = random_tensor({1000}, g), b = random_tensor({1000}, g);
  device_buffer<float> d_a(a.data(), a.size()), d_b(b.data(), b.size()), d_y(a.size()), d_p(a.size());
  nmhash::gpu::add_relu(d_a.data(), d_b.data(), d_y.data(), a.size(), nullptr);
  nmhash::gpu::multiply(d_a.data(), d_b.data(), d_p.data(), a.size(), nullptr);
  nmhash::gpu::accumulate(d_a.data(), d_b.data(), a.size(), nullptr);
  const auto y = to_host(d_y), sum = to_host(d_a), prod = to_host(d_p);
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(sum[i] == a[i] + b[i]);
    REQUIRE(prod[i] == a[i] * b[i]);
    REQUIRE(y[i] == std::max(a[i] + b[i], 0.0f));
    zeros += y[i] == 0.0f;
  }
  REQUIRE(zeros > 300);  // both sides of the ReLU were exercised
}

TEST_CASE("gpu memory bank update stores the batch rows", "[gpu][train][loss]") {
  std::mt19937_64 g(6);
  const std::vector<std::int32_t> ids{0, 1, 2, 0, 1, 2, 0};
  nmhash::gpu::device_memory_bank<float> bank(nmhash::labels::single(ids), 5);
  const auto u = random_tensor({2, 5}, g);
  device_buffer<float> du(u.data(), u.size());
  bank.update(du.data(), {4, 1});
  std::vector<float> rows(7 * 5);
  bank.download(rows.data());
  for (std::size_t r = 0; r < 7; ++r)
    for (std::size_t k = 0; k < 5; ++k) {
      const float expect = r == 4 ? u[k] : r == 1 ? u[5 + k] : 0.0f;
      CHECK(rows[r * 5 + k] == expect);
    }
  CHECK(bank.similar_pairs({0, 1, 2}) == 3 + 2 + 2);
  CHECK_THROWS_WITH(bank.update(du.data(), {4, 7}), Catch::Contains("training index 7 outside the bank of 7"));
  // Multi-hot sets: similar = at least one shared label.
  const std::vector<int> hot{1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1};
  nmhash::gpu::device_memory_bank<float> multi(nmhash::labels::multi_hot(hot.data(), 7, 2), 5);
  CHECK(multi.words() == 1);
  CHECK(multi.labels() == nullptr);
  // Rows {0} {1} {0,1} {} {0} {1} {1}: row 0 meets rows 0, 2, 4; the empty
  // set meets none; {0,1} meets all but row 3.
  CHECK(multi.similar_pairs({0, 3}) == 3);
  CHECK(multi.similar_pairs({2}) == 6);
}

TEST_CASE("gpu hashing losses equal the CPU losses, value and gradient", "[gpu][train][loss]") {
  using kind = nmhash::gpu::hashing_loss_kind;
  std::mt19937_64 g(7);
  const std::size_t N = 41, K = 12, B = 6;
  std::vector<std::int32_t> ids(N);
  for (auto& v : ids) v = static_cast<std::int32_t>(g() % 4);
  // Multi-hot sets of 70 labels (two words), each of 0 to 3 labels.
  std::vector<std::uint8_t> hot(N * 70, 0);
  for (std::size_t i = 0; i < N; ++i)
    for (int t = 0; t < 3; ++t) hot[i * 70 + g() % 70] = static_cast<std::uint8_t>(g() % 4 != 0);
  const std::vector<std::size_t> idx{3, 17, 0, 40, 22, 9};
  for (const bool multi_label : {false, true})
  for (const kind k : {kind::dpsh, kind::eq7, kind::dhn, kind::hashnet, kind::dsh}) {
    DYNAMIC_SECTION("loss " << static_cast<int>(k) << (multi_label ? ", multi-label" : ", class ids")) {
      const auto labels = multi_label ? nmhash::labels::multi_hot(hot.data(), N, 70) : nmhash::labels::single(ids);
      // Outputs of the scale each loss meets in training.
      const float scale = k == kind::eq7 ? 3.0f : k == kind::hashnet ? 0.7f : 1.5f;
      nmhash::loss::memory_bank<float> bank(labels, K);
      const auto rows = random_tensor({N, K}, g, scale);
      std::copy(rows.data(), rows.data() + rows.size(), bank.rows());
      auto u = random_tensor({B, K}, g, scale);
      if (k == kind::hashnet)
        for (std::size_t e = 0; e < u.size(); ++e) u[e] = std::tanh(u[e]);
      bank.update(u, idx);
      nmhash::tensor<float> du;
      nmhash::gpu::hashing_loss_options o;
      o.kind = k;
      o.alpha = 0.3;
      o.eta = 50;
      o.hashnet_alpha = 0.4;
      o.margin = 20;
      const double expect = k == kind::dpsh      ? nmhash::loss::dpsh(u, idx, bank, o.alpha, du)
                            : k == kind::eq7     ? nmhash::loss::pairwise_eq7(u, idx, bank, o.eta, du)
                            : k == kind::dhn     ? nmhash::loss::dhn(u, idx, bank, o.alpha, du)
                            : k == kind::hashnet ? nmhash::loss::hashnet(u, idx, bank, o.hashnet_alpha, du)
                                                 : nmhash::loss::dsh(u, idx, bank, o.margin, o.alpha, du);

      nmhash::gpu::device_memory_bank<float> dbank(labels, K);
      dbank.upload(rows.data());
      device_buffer<float> d_u(u.data(), u.size()), d_du(u.size());
      dbank.update(d_u.data(), idx);
      nmhash::gpu::hashing_loss<float> loss(o);
      const double got = loss(d_u.data(), idx, dbank, d_du.data());
      CHECK(got == Approx(expect).epsilon(1e-5));
      const auto grad = to_host(d_du);
      CHECK(relative_gap(grad.data(), du.data(), du.size()) < 1e-5);
      double norm = 0;
      for (std::size_t e = 0; e < du.size(); ++e) norm += std::abs(du[e]);
      CHECK(norm > 0);
    }
  }
}

TEST_CASE("gpu hashing loss refuses a batch index outside the bank", "[gpu][train][loss]") {
  const std::vector<std::int32_t> ids{0, 1, 0};
  nmhash::gpu::device_memory_bank<float> bank(nmhash::labels::single(ids), 4);
  device_buffer<float> u(4), du(4);
  nmhash::gpu::hashing_loss<float> loss({});
  CHECK_THROWS_WITH(loss(u.data(), {3}, bank, du.data()), Catch::Contains("training index 3 outside the bank of 3"));
}

namespace {

// Steps the CPU and the device optimizer three times with the same
// gradients over two groups, then compares parameters and state.
template <class Cpu, class Gpu>
void compare_optimizers(Cpu cpu, Gpu gpu) {
  std::mt19937_64 g(8);
  const std::size_t n = 300;
  const std::vector<nmhash::nn::parameter_range> ranges{{0, 180, 0}, {180, 100, 1}};  // 280..300 untouched
  auto params = random_tensor({n}, g);
  nmhash::aligned_vector<float> p(params.data(), params.data() + n);
  device_buffer<float> dp(p.data(), n), dg(n);
  for (int step = 0; step < 3; ++step) {
    const auto grad = random_tensor({n}, g);
    nmhash::aligned_vector<float> gv(grad.data(), grad.data() + n);
    cpu.step(p, gv, ranges);
    dg.copy_from(gv.data(), n);
    gpu.step(dp.data(), dg.data(), n, ranges);
  }
  const auto got = to_host(dp);
  CHECK(relative_gap(got.data(), p.data(), n) < 2e-6);
  CHECK(std::equal(got.begin() + 280, got.end(), params.data() + 280));
  auto cs = cpu.state();
  auto gs = gpu.state();
  REQUIRE(cs.size() == gs.size());
  for (std::size_t s = 0; s < cs.size(); ++s) {
    CHECK(cs[s].first == gs[s].first);
    const auto st = to_host(*gs[s].second);
    CHECK(relative_gap(st.data(), cs[s].second->data(), n) < 2e-6);
  }
}

}  // namespace

TEST_CASE("gpu optimizers equal the CPU optimizers over two parameter groups", "[gpu][train][optim]") {
  const nmhash::optim::group_table groups{{{1e-2, 1e-3}, {5e-2, 0.0}}, {}};
  SECTION("adam") { compare_optimizers(nmhash::optim::adam<float>(groups), nmhash::gpu::adam<float>(groups)); }
  SECTION("sgd") { compare_optimizers(nmhash::optim::sgd<float>(0.9, groups), nmhash::gpu::sgd<float>(0.9, groups)); }
  SECTION("rmsprop") {
    compare_optimizers(nmhash::optim::rmsprop<float>(groups), nmhash::gpu::rmsprop<float>(groups));
  }
}
