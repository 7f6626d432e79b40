#include <catch2/catch.hpp>

#include <random>

#include "nmhash/nmhash.hpp"
#include "reference.hpp"

using Catch::Detail::Approx;

namespace {

struct problem {
  ref::bits_t qb, db;
  std::size_t k;
  std::vector<std::int32_t> ql, dl;
};

problem random_problem(std::size_t nq, std::size_t n, std::size_t k, int classes,
                       std::mt19937_64& g, double p_one = 0.5) {
  problem p{ref::random_bits(nq, k, g, p_one), ref::random_bits(n, k, g, p_one), k, {}, {}};
  for (std::size_t i = 0; i < nq; ++i) p.ql.push_back(static_cast<std::int32_t>(g() % classes));
  for (std::size_t i = 0; i < n; ++i) p.dl.push_back(static_cast<std::int32_t>(g() % classes));
  return p;
}

struct per_query {
  std::vector<int> dist, rel;
};

per_query query_view(const problem& p, const ref::relevance_t& rel, std::size_t q) {
  per_query v;
  for (std::size_t j = 0; j < p.db.size(); ++j) {
    v.dist.push_back(ref::distance(p.qb[q], p.db[j]));
    v.rel.push_back(rel[q][j]);
  }
  return v;
}

nmhash::evaluation run(const problem& p, const nmhash::evaluation_options& opt) {
  return nmhash::evaluate(ref::pack(p.qb, p.k), ref::pack(p.db, p.k), nmhash::labels::single(p.ql),
                          nmhash::labels::single(p.dl), opt);
}

double precision_at(const std::vector<int>& ranked, std::size_t n) {
  const std::size_t top = std::min(n, ranked.size());
  if (top == 0) return 0;
  double hits = 0;
  for (std::size_t i = 0; i < top; ++i) hits += ranked[i];
  return hits / static_cast<double>(top);
}

}  // namespace

TEST_CASE("harmonic differences are exact in the table and accurate beyond", "[metrics]") {
  const nmhash::harmonic_numbers H(1000);
  auto direct = [](std::uint64_t a, std::uint64_t b) {
    long double s = 0;
    for (std::uint64_t i = b; i > a; --i) s += 1.0L / static_cast<long double>(i);
    return static_cast<double>(s);
  };
  REQUIRE(H.diff(0, 1) == 1.0);
  REQUIRE(H.diff(5, 5) == 0.0);
  REQUIRE(H.diff(3, 900) == Approx(direct(3, 900)).epsilon(1e-14));
  REQUIRE(H.diff(500, 5000) == Approx(direct(500, 5000)).epsilon(1e-13));
  REQUIRE(H.diff(70000, 70123) == Approx(direct(70000, 70123)).epsilon(1e-12));
  REQUIRE(H.diff(1000000, 3000000) == Approx(direct(1000000, 3000000)).epsilon(1e-12));
}

TEST_CASE("tie-aware AP, AP@k and precision@N equal the mean over every tie order", "[metrics]") {
  std::mt19937_64 g(10);
  for (int trial = 0; trial < 60; ++trial) {
    // Tiny: 2 queries, 7-9 items, 3 bits -> at most 4 tie groups.
    const std::size_t n = 7 + static_cast<std::size_t>(trial % 3);
    const auto p = random_problem(2, n, 3, 2 + trial % 3, g, trial % 2 ? 0.5 : 0.8);
    nmhash::evaluation_options opt;
    opt.map_at = {1, 3, 5, n, n + 4};
    opt.precision_at = {1, 2, 4, n, n + 3};
    opt.per_query = true;
    const auto ev = run(p, opt);
    const auto rel = ref::single_relevance(p.ql, p.dl);
    for (std::size_t q = 0; q < 2; ++q) {
      const auto v = query_view(p, rel, q);
      const double ap = ref::mean_over_tie_orders(v.dist, v.rel, ref::ap_full_of_list);
      REQUIRE(ev.ap_tie_aware[q] == Approx(ap).margin(1e-12));
      REQUIRE(ev.ap_index_order[q] == Approx(ref::ap_full_of_list(ref::ranked_relevance(v.dist, v.rel))).margin(1e-12));
    }
    for (std::size_t a = 0; a < opt.map_at.size(); ++a) {
      double aware = 0, index = 0;
      for (std::size_t q = 0; q < 2; ++q) {
        const auto v = query_view(p, rel, q);
        const std::size_t k = opt.map_at[a];
        aware += ref::mean_over_tie_orders(v.dist, v.rel, [k](const std::vector<int>& l) { return ref::ap_of_list(l, k); });
        index += ref::ap_of_list(ref::ranked_relevance(v.dist, v.rel), k);
      }
      REQUIRE(ev.map_at[a].tie_aware == Approx(aware / 2).margin(1e-12));
      REQUIRE(ev.map_at[a].index_order == Approx(index / 2).margin(1e-12));
    }
    for (std::size_t a = 0; a < opt.precision_at.size(); ++a) {
      double aware = 0, index = 0;
      for (std::size_t q = 0; q < 2; ++q) {
        const auto v = query_view(p, rel, q);
        const std::size_t top = opt.precision_at[a];
        aware += ref::mean_over_tie_orders(v.dist, v.rel, [top](const std::vector<int>& l) { return precision_at(l, top); });
        index += precision_at(ref::ranked_relevance(v.dist, v.rel), top);
      }
      REQUIRE(ev.precision_at[a].tie_aware == Approx(aware / 2).margin(1e-12));
      REQUIRE(ev.precision_at[a].index_order == Approx(index / 2).margin(1e-12));
    }
  }
}

TEST_CASE("index-order metrics equal a stable sort at every code width", "[metrics]") {
  std::mt19937_64 g(11);
  for (std::size_t k : {1, 12, 64, 65, 128, 200}) {
    DYNAMIC_SECTION("K = " << k) {
      const auto p = random_problem(7, 900, k, 5, g);
      nmhash::evaluation_options opt;
      opt.map_at = {1, 10, 100, 900, 5000};
      opt.precision_at = {1, 10, 100, 1000};
      opt.radius = static_cast<int>(k) / 3;
      opt.threads.count = 2;
      const auto ev = run(p, opt);
      const auto rel = ref::single_relevance(p.ql, p.dl);
      double map = 0;
      std::vector<double> mapk(opt.map_at.size()), pn(opt.precision_at.size());
      std::vector<double> pr_p(k + 1), pr_r(k + 1);
      for (std::size_t q = 0; q < 7; ++q) {
        const auto v = query_view(p, rel, q);
        const auto ranked = ref::ranked_relevance(v.dist, v.rel);
        map += ref::ap_full_of_list(ranked);
        for (std::size_t a = 0; a < opt.map_at.size(); ++a) mapk[a] += ref::ap_of_list(ranked, opt.map_at[a]);
        for (std::size_t a = 0; a < opt.precision_at.size(); ++a) pn[a] += precision_at(ranked, opt.precision_at[a]);
        int total_rel = 0;
        for (int r : v.rel) total_rel += r;
        for (std::size_t r = 0; r <= k; ++r) {
          int retrieved = 0, hits = 0;
          for (std::size_t j = 0; j < v.dist.size(); ++j)
            if (v.dist[j] <= static_cast<int>(r)) {
              ++retrieved;
              hits += v.rel[j];
            }
          pr_p[r] += retrieved ? static_cast<double>(hits) / retrieved : 0.0;
          pr_r[r] += total_rel ? static_cast<double>(hits) / total_rel : 0.0;
        }
      }
      REQUIRE(ev.map.index_order == Approx(map / 7).margin(1e-12));
      for (std::size_t a = 0; a < opt.map_at.size(); ++a)
        REQUIRE(ev.map_at[a].index_order == Approx(mapk[a] / 7).margin(1e-12));
      for (std::size_t a = 0; a < opt.precision_at.size(); ++a)
        REQUIRE(ev.precision_at[a].index_order == Approx(pn[a] / 7).margin(1e-12));
      REQUIRE(ev.pr_curve.size() == k + 1);
      for (std::size_t r = 0; r <= k; ++r) {
        REQUIRE(ev.pr_curve[r].precision == Approx(pr_p[r] / 7).margin(1e-12));
        REQUIRE(ev.pr_curve[r].recall == Approx(pr_r[r] / 7).margin(1e-12));
      }
      REQUIRE(ev.within_radius.precision == Approx(pr_p[static_cast<std::size_t>(opt.radius)] / 7).margin(1e-12));
      // MAP only path agrees with the full evaluation.
      const auto m = nmhash::mean_average_precision(ref::pack(p.qb, k), ref::pack(p.db, k),
                                                    nmhash::labels::single(p.ql),
                                                    nmhash::labels::single(p.dl));
      REQUIRE(m.tie_aware == Approx(ev.map.tie_aware).margin(1e-15));
      REQUIRE(m.index_order == Approx(ev.map.index_order).margin(1e-15));
    }
  }
}

TEST_CASE("tie conventions agree when no tie group mixes relevant and irrelevant items", "[metrics]") {
  // Database codes equal to the query's class prototype: every tie group is
  // pure, so any order inside it gives the same AP.
  std::mt19937_64 g(12);
  const std::size_t k = 32;
  const auto protos = ref::random_bits(4, k, g);
  problem p{{}, {}, k, {}, {}};
  for (int c = 0; c < 4; ++c) {
    p.qb.push_back(protos[static_cast<std::size_t>(c)]);
    p.ql.push_back(c);
  }
  for (std::size_t j = 0; j < 200; ++j) {
    const auto c = static_cast<std::size_t>(g() % 4);
    p.db.push_back(protos[c]);
    p.dl.push_back(static_cast<std::int32_t>(c));
  }
  nmhash::evaluation_options opt;
  opt.map_at = {10, 60};
  const auto ev = run(p, opt);
  REQUIRE(ev.map.tie_aware == Approx(1.0));
  REQUIRE(ev.map.index_order == Approx(1.0));
  REQUIRE(ev.map_at[0].tie_aware == Approx(ev.map_at[0].index_order).margin(1e-12));
  REQUIRE(ev.map_at[1].tie_aware == Approx(ev.map_at[1].index_order).margin(1e-12));
}

TEST_CASE("all distances equal: tie-aware AP is the relevant fraction's expectation", "[metrics]") {
  // One group of n items with R relevant: E[AP] = (1/R) * (R/n) *
  // [(1 - m)(H_n) + m n] with m = (R-1)/(n-1).
  const std::size_t n = 40, R = 10;
  problem p{ref::bits_t(1, std::vector<int>(8, 0)), ref::bits_t(n, std::vector<int>(8, 1)), 8, {0}, {}};
  for (std::size_t j = 0; j < n; ++j) p.dl.push_back(j % 4 == 0 ? 0 : 1);
  const auto ev = run(p, {});
  double hn = 0;
  for (std::size_t i = 1; i <= n; ++i) hn += 1.0 / static_cast<double>(i);
  const double m = static_cast<double>(R - 1) / static_cast<double>(n - 1);
  REQUIRE(ev.map.tie_aware == Approx(((1 - m) * hn + m * n) / n).epsilon(1e-12));
  // Index order: relevant items at positions 1, 5, 9, ...
  double ap = 0;
  for (std::size_t i = 0; i < R; ++i) ap += static_cast<double>(i + 1) / static_cast<double>(4 * i + 1);
  REQUIRE(ev.map.index_order == Approx(ap / R).epsilon(1e-12));
}

TEST_CASE("a query without relevant items scores 0 and counts in the mean", "[metrics]") {
  problem p{{{0, 0, 0, 0}, {1, 1, 1, 1}}, {{0, 0, 0, 1}, {1, 1, 1, 1}, {0, 1, 1, 0}}, 4, {7, 1}, {1, 1, 1}};
  nmhash::evaluation_options opt;
  opt.map_at = {2};
  opt.per_query = true;
  const auto ev = run(p, opt);
  REQUIRE(ev.ap_tie_aware[0] == 0.0);
  REQUIRE(ev.ap_index_order[0] == 0.0);
  REQUIRE(ev.ap_tie_aware[1] == Approx(1.0));
  REQUIRE(ev.map.tie_aware == Approx(0.5));
  REQUIRE(ev.map.index_order == Approx(0.5));
  REQUIRE(ev.map_at[0].index_order == Approx(0.5));
  REQUIRE(ev.pr_curve[4].recall == Approx(0.5));
}

TEST_CASE("multi-label relevance with more than 64 labels", "[metrics]") {
  std::mt19937_64 g(13);
  const std::size_t L = 100, nq = 5, n = 300, k = 24;
  std::vector<std::uint8_t> qm(nq * L, 0), dm(n * L, 0);
  for (auto& v : qm) v = (g() % 40 == 0);
  for (auto& v : dm) v = (g() % 40 == 0);
  qm[0 * L + 99] = 1;  // a label in the second word
  dm[3 * L + 99] = 1;
  const auto qb = ref::random_bits(nq, k, g), db = ref::random_bits(n, k, g);
  const auto ql = nmhash::labels::multi_hot(qm.data(), nq, L);
  const auto dl = nmhash::labels::multi_hot(dm.data(), n, L);
  nmhash::evaluation_options opt;
  opt.per_query = true;
  opt.map_at = {50};
  const auto ev = nmhash::evaluate(ref::pack(qb, k), ref::pack(db, k), ql, dl, opt);
  for (std::size_t q = 0; q < nq; ++q) {
    std::vector<int> dist, rel;
    for (std::size_t j = 0; j < n; ++j) {
      dist.push_back(ref::distance(qb[q], db[j]));
      int r = 0;
      for (std::size_t c = 0; c < L; ++c) r |= qm[q * L + c] & dm[j * L + c];
      rel.push_back(r);
    }
    REQUIRE(ev.ap_index_order[q] == Approx(ref::ap_full_of_list(ref::ranked_relevance(dist, rel))).margin(1e-12));
  }
  std::uint8_t bad[2] = {0, 2};
  REQUIRE_THROWS_WITH(nmhash::labels::multi_hot(bad, 1, 2), Catch::Contains("column 1 is neither 0 nor 1"));
  // One-hot labels give the same MAP as class ids.
  std::vector<std::int32_t> ids{0, 2, 1, 2};
  std::vector<std::uint8_t> onehot{1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
  const auto codes = ref::pack(ref::random_bits(4, 16, g), 16);
  const auto a = nmhash::mean_average_precision(codes, codes, nmhash::labels::single(ids), nmhash::labels::single(ids));
  const auto b = nmhash::mean_average_precision(codes, codes, nmhash::labels::multi_hot(onehot.data(), 4, 3),
                                                nmhash::labels::multi_hot(onehot.data(), 4, 3));
  REQUIRE(a.tie_aware == Approx(b.tie_aware).margin(1e-15));
  REQUIRE(a.index_order == Approx(b.index_order).margin(1e-15));
}

TEST_CASE("metrics on an empty database and shape errors", "[metrics]") {
  const nmhash::packed_codes q(2, 16), empty(0, 16);
  const auto ev = nmhash::evaluate(q, empty, nmhash::labels::single({0, 1}), nmhash::labels::single({}));
  REQUIRE(ev.map.tie_aware == 0.0);
  REQUIRE(ev.map.index_order == 0.0);
  REQUIRE_THROWS_WITH(nmhash::evaluate(q, empty, nmhash::labels::single({0}), nmhash::labels::single({})),
                      Catch::Contains("2 query codes but 1 query labels"));
  std::uint8_t m[2] = {1, 0};
  REQUIRE_THROWS_WITH(nmhash::evaluate(q, empty, nmhash::labels::single({0, 1}), nmhash::labels::multi_hot(m, 0, 2)),
                      Catch::Contains("both be class ids or both be multi-hot"));
}
