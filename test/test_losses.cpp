// Pairwise hashing losses: finite-difference gradients in double (the
// memory bank held fixed, as the reference code detaches it) and values
// against direct evaluation of their formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"
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
