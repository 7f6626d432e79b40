// Pairwise hashing losses: finite-difference gradients in double (the
// memory bank held fixed, as the reference code detaches it) and values
// against direct evaluation of their formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "nmhash/hashing/itq.hpp"
#include "nmhash/loss/classify.hpp"
#include "nmhash/loss/dhn.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/dsh.hpp"
#include "nmhash/loss/hashnet.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"
#include "nmhash/loss/registry.hpp"
#include "finite_difference.hpp"

using Catch::Detail::Approx;
using nmhash::shape4;
using nmhash::tensor;

namespace {

struct setup {
  nmhash::loss::memory_bank<double> bank;
  tensor<double> u;
  std::vector<std::size_t> idx;
  setup(std::size_t n, std::size_t k, std::size_t b, bool multi, std::uint64_t seed)
      : bank(make_labels(n, multi, seed), k), u(shape4{b, k}) {
    std::mt19937_64 g(seed);
    std::normal_distribution<double> normal;
    tensor<double> all(shape4{n, k});
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = normal(g);
    std::vector<std::size_t> every(n);
    for (std::size_t i = 0; i < n; ++i) every[i] = i;
    bank.update(all, every);
    for (std::size_t i = 0; i < b; ++i) idx.push_back((i * 7 + 3) % n);
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = normal(g);
    bank.update(u, idx);
  }
  static nmhash::labels make_labels(std::size_t n, bool multi, std::uint64_t seed) {
    std::mt19937_64 g(seed + 100);
    if (!multi) {
      std::vector<std::int32_t> ids(n);
      for (auto& v : ids) v = static_cast<std::int32_t>(g() % 3);
      return nmhash::labels::single(ids);
    }
    std::vector<std::uint8_t> m(n * 5);
    for (auto& v : m) v = g() % 3 == 0;
    return nmhash::labels::multi_hot(m.data(), n, 5);
  }
};

template <class Loss>
void check_gradient(setup& s, Loss loss) {
  tensor<double> du, scratch;
  loss(s.u, du);
  const auto value = [&] { return loss(s.u, scratch); };
  for (std::size_t e = 0; e < s.u.size(); ++e) {
    INFO("output element " << e);
    REQUIRE(du[e] == Approx(central_difference(s.u[e], value)).epsilon(1e-6).margin(1e-9));
  }
}

}  // namespace

TEST_CASE("dpsh loss: value and gradient", "[loss][grad]") {
  for (bool multi : {false, true}) {
    setup s(20, 6, 4, multi, 1);
    const double alpha = 0.1;
    auto loss = [&](const tensor<double>& u, tensor<double>& du) { return nmhash::loss::dpsh(u, s.idx, s.bank, alpha, du); };
    tensor<double> du;
    const double value = loss(s.u, du);
    double expect = 0;
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 20; ++j) {
        double t = 0;
        for (std::size_t k = 0; k < 6; ++k) t += s.u[i * 6 + k] * s.bank.rows()[j * 6 + k];
        t *= 0.5;
        const double sim = s.bank.similar(s.idx[i], j) ? 1 : 0;
        expect += std::log(1 + std::exp(t)) - sim * t;
      }
    double q = 0;
    for (std::size_t e = 0; e < s.u.size(); ++e) q += std::pow(s.u[e] - (s.u[e] >= 0 ? 1 : -1), 2);
    REQUIRE(value == Approx(expect / 80 + alpha * q / 24).epsilon(1e-12));
    check_gradient(s, loss);
  }
}

TEST_CASE("classify loss: softmax and sigmoid cross-entropy, value and gradient", "[loss][grad]") {
  for (bool multi : {false, true}) {
    const std::size_t c = multi ? 5 : 3;  // the setup's labels: 3 classes, or 5 labels
    setup s(20, c, 4, multi, 2);
    auto loss = [&](const tensor<double>& u, tensor<double>& du) { return nmhash::loss::classify(u, s.idx, s.bank, du); };
    tensor<double> du;
    const double value = loss(s.u, du);
    double expect = 0;
    const auto& lab = s.bank.labels();
    for (std::size_t i = 0; i < 4; ++i) {
      const double* row = s.u.data() + i * c;
      if (multi) {
        for (std::size_t k = 0; k < c; ++k) {
          const double p = 1 / (1 + std::exp(-row[k]));
          expect -= (lab.has(s.idx[i], k) ? std::log(p) : std::log(1 - p)) / static_cast<double>(c);
        }
      } else {
        double z = 0;
        for (std::size_t k = 0; k < c; ++k) z += std::exp(row[k]);
        expect -= std::log(std::exp(row[lab.ids()[s.idx[i]]]) / z);
      }
    }
    REQUIRE(value == Approx(expect / 4).epsilon(1e-12));
    check_gradient(s, loss);
  }
  setup narrow(20, 2, 4, false, 2);  // class 2 has no output
  tensor<double> du;
  bool outside = false;
  for (std::size_t i : narrow.idx) outside |= narrow.bank.labels().ids()[i] == 2;
  REQUIRE(outside);
  REQUIRE_THROWS_WITH(nmhash::loss::classify(narrow.u, narrow.idx, narrow.bank, du),
                      Catch::Contains("outside the 2 outputs"));
}

TEST_CASE("pairwise Eq. (7) loss: value and gradient", "[loss][grad]") {
  for (bool multi : {false, true}) {
    setup s(15, 5, 3, multi, 2);
    const double eta = 3.0;
    auto loss = [&](const tensor<double>& u, tensor<double>& du) {
      return nmhash::loss::pairwise_eq7(u, s.idx, s.bank, eta, du);
    };
    tensor<double> du;
    const double value = loss(s.u, du);
    double expect = 0;
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 15; ++j) {
        double ip = 0;
        for (std::size_t k = 0; k < 5; ++k) ip += s.u[i * 5 + k] * s.bank.rows()[j * 5 + k];
        const double sim = s.bank.similar(s.idx[i], j) ? 1 : -1;
        expect += (ip - 5 * sim) * (ip - 5 * sim);
      }
    double q = 0;
    for (std::size_t e = 0; e < s.u.size(); ++e) q += std::pow(s.u[e] - (s.u[e] >= 0 ? 1 : -1), 2);
    REQUIRE(value == Approx((expect + eta * q) / 45).epsilon(1e-12));
    check_gradient(s, loss);
  }
}

TEST_CASE("losses reject batches that do not fit the bank", "[loss]") {
  setup s(10, 4, 2, false, 3);
  tensor<double> du, wrong(shape4{2, 5});
  REQUIRE_THROWS_WITH(nmhash::loss::dpsh(wrong, s.idx, s.bank, 0.1, du), Catch::Contains("are not (B, 4)"));
  std::vector<std::size_t> far{0, 10};
  REQUIRE_THROWS_WITH(nmhash::loss::pairwise_eq7(s.u, far, s.bank, 1.0, du),
                      Catch::Contains("training index 10 outside the bank of 10"));
}

namespace {

// sum over the batch x bank pairs of f(inner product, distance, similar).
template <class F>
double over_pairs(const setup& s, std::size_t b, std::size_t n, std::size_t k, F f) {
  double sum = 0;
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0, dist = 0;
      for (std::size_t c = 0; c < k; ++c) {
        const double x = s.u[i * k + c], y = s.bank.rows()[j * k + c];
        dot += x * y;
        dist += (x - y) * (x - y);
      }
      sum += f(dot, dist, s.bank.similar(s.idx[i], j));
    }
  return sum;
}

}  // namespace

TEST_CASE("dhn loss: value and gradient", "[loss][grad]") {
  for (bool multi : {false, true}) {
    setup s(20, 6, 4, multi, 2);
    const double lambda = 0.3;
    auto loss = [&](const tensor<double>& u, tensor<double>& du) { return nmhash::loss::dhn(u, s.idx, s.bank, lambda, du); };
    tensor<double> du;
    const double pairs = over_pairs(s, 4, 20, 6, [](double t, double, bool sim) {
      return std::log(1 + std::exp(t)) - (sim ? t : 0.0);
    });
    double q = 0;
    for (std::size_t e = 0; e < s.u.size(); ++e) q += std::log(std::cosh(std::abs(s.u[e]) - 1));
    REQUIRE(loss(s.u, du) == Approx(pairs / 80 + lambda * q / 24).epsilon(1e-12));
    check_gradient(s, loss);
  }
}

TEST_CASE("hashnet loss: class-balanced weights, value and gradient", "[loss][grad]") {
  // DeepHash-pytorch's scale, and the authors' 10 / K.
  STATIC_REQUIRE(nmhash::loss::hashnet_defaults::alpha == 0.1);
  for (const double alpha : {nmhash::loss::hashnet_defaults::alpha, 10.0 / 6}) {
    for (bool multi : {false, true}) {
      setup s(20, 6, 4, multi, 3);
      auto loss = [&](const tensor<double>& h, tensor<double>& dh) { return nmhash::loss::hashnet(h, s.idx, s.bank, alpha, dh); };
      const double s1 = over_pairs(s, 4, 20, 6, [](double, double, bool sim) { return sim ? 1.0 : 0.0; });
      const double s0 = 80 - s1;
      REQUIRE(s1 > 0);
      REQUIRE(s0 > 0);
      const double expect = over_pairs(s, 4, 20, 6, [&](double dot, double, bool sim) {
        const double t = alpha * dot;
        return (sim ? 80 / s1 : 80 / s0) * (std::log(1 + std::exp(t)) - (sim ? t : 0.0));
      });
      tensor<double> dh;
      REQUIRE(loss(s.u, dh) == Approx(expect / 80).epsilon(1e-12));
      check_gradient(s, loss);
    }
  }
}

TEST_CASE("dsh loss: value and gradient", "[loss][grad]") {
  for (bool multi : {false, true}) {
    setup s(20, 6, 4, multi, 4);
    const double margin = 12, alpha = 0.1;
    auto loss = [&](const tensor<double>& u, tensor<double>& du) {
      return nmhash::loss::dsh(u, s.idx, s.bank, margin, alpha, du);
    };
    const double pairs = over_pairs(s, 4, 20, 6, [&](double, double d, bool sim) {
      return sim ? 0.5 * d : 0.5 * std::max(margin - d, 0.0);
    });
    double reg = 0;
    for (std::size_t e = 0; e < s.u.size(); ++e) reg += std::abs(std::abs(s.u[e]) - 1);
    tensor<double> du;
    REQUIRE(loss(s.u, du) == Approx(pairs / 80 + alpha * reg / 24).epsilon(1e-12));
    // Some dissimilar pairs sit inside the margin and some outside.
    const double inside = over_pairs(s, 4, 20, 6, [&](double, double d, bool sim) { return !sim && d < margin ? 1.0 : 0.0; });
    const double outside = over_pairs(s, 4, 20, 6, [&](double, double d, bool sim) { return !sim && d >= margin ? 1.0 : 0.0; });
    REQUIRE(inside > 0);
    REQUIRE(outside > 0);
    check_gradient(s, loss);
  }
}

TEST_CASE("scaled tanh: forward, finite-difference gradient at several beta, HashNet's schedule", "[nn][grad]") {
  for (double beta : {0.5, 1.0, 2.5, 8.0}) {
    nmhash::nn::scaled_tanh<double> layer(beta);
    tensor<double> x(shape4{3, 5}), y, dy(shape4{3, 5}), dx;
    std::mt19937_64 g(9);
    std::normal_distribution<double> n01;
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = 0.4 * n01(g);
      dy[i] = n01(g);
    }
    layer.forward(x, y, true);
    REQUIRE(y[3] == Approx(std::tanh(beta * x[3])));
    layer.backward(dy, dx);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const auto value = [&] {
        tensor<double> out;
        nmhash::nn::scaled_tanh<double> l(beta);
        l.forward(x, out, true);
        double v = 0;
        for (std::size_t e = 0; e < out.size(); ++e) v += dy[e] * out[e];
        return v;
      };
      INFO("beta " << beta << ", element " << i);
      REQUIRE(dx[i] == Approx(central_difference(x[i], value)).epsilon(1e-6).margin(1e-9));
    }
  }
  REQUIRE_THROWS_WITH(nmhash::nn::scaled_tanh<float>(0.0), Catch::Contains("positive"));
  REQUIRE(nmhash::nn::hashnet_beta(0) == 1.0);
  REQUIRE(nmhash::nn::hashnet_beta(199) == 1.0);
  REQUIRE(nmhash::nn::hashnet_beta(200) == Approx(std::sqrt(2.0)));
  REQUIRE(nmhash::nn::hashnet_beta(1000) > nmhash::nn::hashnet_beta(800));
}

TEST_CASE("itq: orthogonal rotation, non-increasing quantization loss, codes beat PCA signs", "[itq]") {
  // Clustered data in 20 dimensions: 4 classes around random centres.
  std::mt19937_64 g(21);
  std::normal_distribution<double> n01;
  const std::size_t n = 600, d = 20, k = 8;
  std::vector<std::vector<double>> centres(4, std::vector<double>(d));
  for (auto& c : centres)
    for (auto& v : c) v = 2 * n01(g);
  std::vector<float> x(n * d);
  std::vector<std::int32_t> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = static_cast<std::int32_t>(i % 4);
    for (std::size_t j = 0; j < d; ++j) x[i * d + j] = static_cast<float>(centres[i % 4][j] + n01(g));
  }
  const auto m = nmhash::hashing::fit_itq(x.data(), n, d, k, 30, 5);
  const Eigen::MatrixXd rtr = m.rotation.transpose() * m.rotation;
  REQUIRE((rtr - Eigen::MatrixXd::Identity(k, k)).norm() < 1e-9);
  REQUIRE(m.quantization_loss.size() == 31);
  for (std::size_t i = 1; i < m.quantization_loss.size(); ++i)
    REQUIRE(m.quantization_loss[i] <= m.quantization_loss[i - 1] + 1e-9);
  REQUIRE(m.quantization_loss.back() < m.quantization_loss.front());
  const auto codes = m.encode(x.data(), n, d);
  REQUIRE(codes.bits() == k);
  const auto lab = nmhash::labels::single(y);
  const double map = nmhash::mean_average_precision(codes, codes, lab, lab).tie_aware;
  REQUIRE(map > 0.5);  // 4 balanced classes: chance is 0.25
  REQUIRE_THROWS_WITH(m.encode(x.data(), 1, d + 1), Catch::Contains("fitted on 20"));
  REQUIRE_THROWS_WITH(nmhash::hashing::fit_itq(x.data(), n, d, d + 1), Catch::Contains("1 <= K"));
}

TEST_CASE("loss_by_name gives each loss with its settings, dsh's default margin follows the bank", "[loss]") {
  setup s(20, 6, 4, true, 9);
  const nmhash::loss::loss_settings set{0.3, 40, 0.2, 0};
  tensor<double> a, b;
  for (const auto& name : nmhash::loss::loss_names()) {
    INFO(name);
    const double expect = name == "dpsh"    ? nmhash::loss::dpsh(s.u, s.idx, s.bank, 0.3, a)
                          : name == "eq7"   ? nmhash::loss::pairwise_eq7(s.u, s.idx, s.bank, 40.0, a)
                          : name == "dhn"   ? nmhash::loss::dhn(s.u, s.idx, s.bank, 0.3, a)
                          : name == "hashnet" ? nmhash::loss::hashnet(s.u, s.idx, s.bank, 0.2, a)
                                              : nmhash::loss::dsh(s.u, s.idx, s.bank, 12.0, 0.3, a);
    REQUIRE(nmhash::loss::loss_by_name<double>(name, set)(s.u, s.idx, s.bank, b) == expect);
    REQUIRE(std::equal(a.data(), a.data() + a.size(), b.data()));
  }
  REQUIRE_THROWS_WITH(nmhash::loss::loss_by_name<double>("dpshh", set),
                      Catch::Contains("unknown hashing loss 'dpshh' (known: dpsh, eq7, dhn, hashnet, dsh)"));
}
