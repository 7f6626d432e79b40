// The Neurons Merging Layer: partitions and truncation, the active-phase
// gradient of A, the frozen-phase gradients, the majority vote, the
// progressive schedule, and a short progressive run on real data.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <random>

#include <memory>
#include <set>
#include "nmhash/codes/bit_ops.hpp"
#include "nmhash/data/batches.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/progressive_trainer.hpp"
#include "nmhash/loss/pairwise_eq7.hpp"
#include "nmhash/nn/lenet.hpp"
#include "nmhash/optim/adam.hpp"

using Catch::Detail::Approx;
using nmhash::hashing::neuron_partition;

TEST_CASE("union-find truncation takes the largest entries and chains them", "[nmlayer][truncate]") {
  const std::size_t k = 5;
  std::vector<double> a(k * k, 0.0);
  auto set = [&](std::size_t i, std::size_t j, double v) { a[i * k + j] = a[j * k + i] = v; };
  set(0, 1, 0.9);
  set(1, 2, 0.8);
  set(0, 2, 0.7);  // closes the cycle 0-1-2: merges nothing, skipped
  set(3, 4, 0.6);
  set(2, 3, 0.1);
  const auto pairs = nmhash::hashing::truncate_adjacency(a, k, 3, 1);
  REQUIRE(pairs == std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}, {1, 2}, {3, 4}});
  const auto merged = neuron_partition(k).merged(pairs);
  REQUIRE(merged.nodes() == 2);
  REQUIRE(merged.groups() == std::vector<std::vector<std::size_t>>{{0, 1, 2}, {3, 4}});

  SECTION("landing exactly on a length stops early") {
    const auto two = nmhash::hashing::truncate_adjacency(a, k, 3, 4);
    REQUIRE(two.size() == 1);
    REQUIRE(neuron_partition(k).merged(two).nodes() == 4);
  }
  SECTION("ties go to the lower pair index; an all-zero A still merges m") {
    const std::vector<double> zero(k * k, 0.0);
    const auto p = nmhash::hashing::truncate_adjacency(zero, k, 2, 1);
    REQUIRE(p == std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}, {0, 2}});
  }
  SECTION("bad input is named") {
    REQUIRE_THROWS_WITH(nmhash::hashing::truncate_adjacency(std::vector<double>(3), k, 1, 1),
                        Catch::Contains("expected K x K = 25"));
  }
}

TEST_CASE("one_per_node truncation merges disjoint pairs, largest first", "[nmlayer][truncate]") {
  namespace h = nmhash::hashing;
  const std::size_t k = 6;
  std::vector<double> a(k * k, 0.0);
  auto set = [&](std::size_t i, std::size_t j, double v) { a[i * k + j] = a[j * k + i] = v; };
  // A star around node 0, as Eq. (4) grows it: top_m chains it into one node.
  set(0, 5, 0.9);
  set(0, 4, 0.8);
  set(0, 3, 0.7);
  set(1, 4, 0.6);
  set(2, 3, 0.5);
  set(1, 2, 0.4);
  REQUIRE(h::truncate_adjacency(a, k, 3, 1) ==
          std::vector<std::pair<std::size_t, std::size_t>>{{0, 5}, {0, 4}, {0, 3}});
  const auto pairs = h::truncate_adjacency(a, k, 3, 1, h::truncation_rule::one_per_node);
  REQUIRE(pairs == std::vector<std::pair<std::size_t, std::size_t>>{{0, 5}, {1, 4}, {2, 3}});
  REQUIRE(neuron_partition(k).merged(pairs).groups() ==
          std::vector<std::vector<std::size_t>>{{0, 5}, {1, 4}, {2, 3}});

  SECTION("an all-zero A pairs nodes in index order") {
    const std::vector<double> zero(k * k, 0.0);
    REQUIRE(h::truncate_adjacency(zero, k, 2, 1, h::truncation_rule::one_per_node) ==
            std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}, {2, 3}});
  }
  SECTION("more merges than disjoint pairs is refused, by the layer and by the schedule") {
    REQUIRE_THROWS_WITH(h::truncate_adjacency(a, k, 4, 1, h::truncation_rule::one_per_node),
                        Catch::Contains("cannot merge 4 disjoint pairs among K = 6"));
    auto s = h::preset("quick");
    s.truncation = h::truncation_rule::one_per_node;
    REQUIRE(h::stage_targets(s) == h::stage_targets(h::preset("quick")));
    s.b_in = 14;
    s.lengths = {12};
    s.merges = 8;
    REQUIRE_NOTHROW(h::stage_targets(s));
    s.lengths = {4};
    REQUIRE_THROWS_WITH(h::stage_targets(s), Catch::Contains("cannot merge 8 disjoint pairs among 14 nodes"));
  }
  SECTION("names") {
    REQUIRE(h::parse_truncation_rule("one_per_node") == h::truncation_rule::one_per_node);
    REQUIRE(std::string(h::to_string(h::truncation_rule::top_m)) == "top_m");
    REQUIRE_THROWS_WITH(h::parse_truncation_rule("greedy"), Catch::Contains("not one of top_m, one_per_node"));
  }
}

TEST_CASE("partitions of merged nodes compose and round-trip", "[nmlayer][partition]") {
  const auto p = neuron_partition(6).merged({{4, 1}}).merged({{0, 3}});  // {0} {1,4} {2} {3} {5} -> {0,3} ...
  REQUIRE(p.str() == "{0,3} {1,4} {2} {5}");
  REQUIRE(neuron_partition::from_node_ids(p.node_ids()) == p);
  const auto q = p.merged({{1, 2}});  // node {1,4} with node {2}
  REQUIRE(q.str() == "{0,3} {1,2,4} {5}");
  const auto s = q.without_nodes({0});
  REQUIRE(s.str() == "{1,2,4} {5}");
  REQUIRE(s.node_ids()[0] == neuron_partition::unused);
  REQUIRE(neuron_partition::from_node_ids(s.node_ids()) == s);
  REQUIRE_THROWS_WITH(neuron_partition::from_groups(3, {{0, 1}, {1}}), Catch::Contains("more than one node"));
  REQUIRE_THROWS_WITH(neuron_partition::from_groups(3, {{0, 5}}), Catch::Contains("neuron 5"));
}

TEST_CASE("evaluation mode: majority vote, ties to the first child, as merge_majority", "[nmlayer][vote]") {
  // Nodes {0,1} {2,3,4} {5}: a 2-child node ties whenever its children
  // disagree, a 3-child node never ties.
  nmhash::hashing::nm_layer<double> nm(neuron_partition::from_groups(6, {{0, 1}, {2, 3, 4}, {5}}));
  std::mt19937_64 gen(3);
  std::normal_distribution<double> n01;
  const std::size_t rows = 200;
  nmhash::tensor<double> x({rows, 6}), y;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = n01(gen);
  x[0] = 0.0;  // sgn(0) = +1
  x[1] = -1.0;
  nm.forward(x, y, false);
  REQUIRE(y.shape()[1] == 3);
  const auto in = nmhash::pack_signs(x.data(), rows, 6);
  const auto expect = nmhash::merge_majority(in, {{0, 1}, {2, 3, 4}, {5}});
  const auto got = nmhash::pack_signs(y.data(), rows, 3);
  std::size_t ties = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    REQUIRE(got.row(r)[0] == expect.row(r)[0]);
    for (std::size_t g = 0; g < 3; ++g) REQUIRE(y[r * 3 + g] != 0.0);  // binary codes, never 0
    const bool tie = (x[r * 6] >= 0) != (x[r * 6 + 1] >= 0);
    ties += tie;
    if (tie) REQUIRE((y[r * 3] > 0) == (x[r * 6] >= 0));
    REQUIRE(y[r * 3 + 2] == x[r * 6 + 5]);  // a singleton node is a wire
  }
  REQUIRE(ties > 50);
  REQUIRE(y[0] > 0);  // row 0: children 0 (sgn +1) and -1 tie to the first
  REQUIRE(nm.encode(x).row(5)[0] == got.row(5)[0]);

  SECTION("summed_output: a tie takes the sign of the summed children's outputs") {
    nm.set_tie(nmhash::hashing::vote_tie::summed_output);
    nmhash::tensor<double> z;
    nm.forward(x, z, false);
    std::size_t differ = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const bool tie = (x[r * 6] >= 0) != (x[r * 6 + 1] >= 0);
      if (tie) {
        REQUIRE((z[r * 3] > 0) == (x[r * 6] + x[r * 6 + 1] >= 0));
        REQUIRE(std::abs(z[r * 3]) == 0.25);
        differ += (z[r * 3] > 0) != (y[r * 3] > 0);
      } else {
        REQUIRE(z[r * 3] == y[r * 3]);
      }
      REQUIRE(z[r * 3 + 1] == y[r * 3 + 1]);  // odd nodes never tie
      REQUIRE(z[r * 3 + 2] == y[r * 3 + 2]);
    }
    REQUIRE(differ > 10);  // the two rules disagree on a share of the ties
    REQUIRE(z[0] < 0);     // row 0: 0 + (-1) < 0
  }
}

TEST_CASE("frozen phase: drawn child gets the hashing gradient, the others Eq. (5)", "[nmlayer][frozen][gradient]") {
  const auto part = neuron_partition::from_groups(7, {{0, 3}, {1, 4, 6}, {2}, {5}});
  const double w = 0.7;
  nmhash::hashing::nm_layer<double> nm(part, w);
  std::mt19937_64 gen(11);
  std::normal_distribution<double> n01;
  const std::size_t rows = 3;
  nmhash::tensor<double> x({rows, 7}), y, dy({rows, 4}), dx;
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = n01(gen);
    if (std::abs(x[i]) < 0.05) x[i] = 0.3;  // keep signs away from the kink
  }
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = n01(gen);
  // Total loss: a linear stand-in for the hashing loss (sum dy * y) plus the
  // frozen loss, with the same draws every time (reseed).
  auto total = [&](const nmhash::tensor<double>& in) {
    nm.reseed(99);
    nmhash::tensor<double> out;
    nm.forward(in, out, true);
    double l = nm.frozen_loss();
    for (std::size_t i = 0; i < out.size(); ++i) l += dy[i] * out[i];
    return l;
  };
  total(x);
  nm.reseed(99);
  nm.forward(x, y, true);
  nm.backward(dy, dx);
  for (std::size_t i = 0; i < x.size(); ++i) {
    nmhash::tensor<double> xp = x, xm = x;
    const double h = 1e-6;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (total(xp) - total(xm)) / (2 * h);
    INFO("input " << i);
    REQUIRE(dx[i] == Approx(fd).margin(1e-7));
  }
  // Every unchosen child of a merged node gets exactly 2 w / B (v - sgn(v_drawn)).
  std::size_t unchosen = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < 2; ++g) {
      const auto& ch = part.children(g);
      std::size_t drawn = ch.size();
      for (std::size_t c = 0; c < ch.size(); ++c)
        if (y[r * 4 + g] == x[r * 7 + ch[c]]) drawn = c;
      REQUIRE(drawn < ch.size());
      REQUIRE(dx[r * 7 + ch[drawn]] == dy[r * 4 + g]);
      const double s = x[r * 7 + ch[drawn]] >= 0 ? 1.0 : -1.0;
      for (std::size_t c = 0; c < ch.size(); ++c)
        if (c != drawn) {
          REQUIRE(dx[r * 7 + ch[c]] == Approx(2 * w / rows * (x[r * 7 + ch[c]] - s)));
          ++unchosen;
        }
    }
  REQUIRE(unchosen == rows * 3);
}

TEST_CASE("frozen phase: every child of a node gets drawn", "[nmlayer][frozen]") {
  nmhash::hashing::nm_layer<float> nm(neuron_partition::from_groups(3, {{0, 1, 2}}), 0.25, 5);
  nmhash::tensor<float> x({300, 3}), y;
  for (std::size_t r = 0; r < 300; ++r)
    for (std::size_t c = 0; c < 3; ++c) x[r * 3 + c] = static_cast<float>(c + 1);
  nm.forward(x, y, true);
  std::size_t count[3] = {0, 0, 0};
  for (std::size_t r = 0; r < 300; ++r) ++count[static_cast<std::size_t>(y[r]) - 1];
  for (std::size_t c : count) REQUIRE(c > 60);
}

TEST_CASE("active phase: Eq. (2)-(3) and the gradient of A", "[nmlayer][active][gradient]") {
  namespace h = nmhash::hashing;
  const std::vector<double> p{0.61, 0.55, 0.70, 0.58, 0.66};
  const std::size_t k = p.size();
  std::vector<double> a(k * k, 0.0);
  std::mt19937_64 gen(2);
  std::uniform_real_distribution<double> u(0.0, 0.4);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = i + 1; j < k; ++j) a[i * k + j] = a[j * k + i] = u(gen);

  SECTION("Eq. (2) by hand for one node") {
    const auto q = h::adjusted_scores(a, p);
    double expect = p[1];
    for (std::size_t j = 0; j < k; ++j)
      if (j != 1) expect += 0.5 * a[1 * k + j] * (p[j] - p[1]);
    REQUIRE(q[1] == Approx(expect));
  }
  SECTION("chain rule: finite differences of Eq. (3) through Eq. (2), one parameter per pair") {
    const auto g = h::active_gradient_of(a, p, h::active_gradient::chain_rule);
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = i + 1; j < k; ++j) {
        auto loss_at = [&](double d) {
          auto b = a;
          b[i * k + j] += d;
          b[j * k + i] += d;
          return h::active_loss(h::adjusted_scores(b, p));
        };
        const double e = 1e-7, fd = (loss_at(e) - loss_at(-e)) / (2 * e);
        INFO("pair " << i << "," << j);
        REQUIRE(g[i * k + j] == Approx(fd).margin(1e-6));
      }
  }
  SECTION("Eq. (4) is the paper's formula; for K = 2 it is half the exact gradient") {
    const auto q = h::adjusted_scores(a, p);
    const auto g = h::active_gradient_of(a, p, h::active_gradient::paper_eq4);
    REQUIRE(g[0 * k + 2] == Approx((q[0] > q[2] ? 1.0 : -1.0) * (p[2] - p[0])));
    const std::vector<double> p2{0.4, 0.5}, a2{0, 0.2, 0.2, 0};
    REQUIRE(h::active_gradient_of(a2, p2, h::active_gradient::chain_rule)[1] ==
            Approx(2 * h::active_gradient_of(a2, p2, h::active_gradient::paper_eq4)[1]));
  }
  SECTION("a step descends, stays symmetric and within [0, 1]; unequal pairs grow first") {
    std::vector<double> z(k * k, 0.0);
    const double l0 = h::active_step(z, p, 1.0, h::active_gradient::paper_eq4);
    for (std::size_t i = 0; i < k; ++i) {
      REQUIRE(z[i * k + i] == 0.0);
      for (std::size_t j = 0; j < k; ++j) {
        REQUIRE(z[i * k + j] == z[j * k + i]);
        REQUIRE(z[i * k + j] >= 0.0);
        REQUIRE(z[i * k + j] <= 1.0);
      }
    }
    // From A = 0 every a_ij grows by lr |p_i - p_j|: the most and least
    // important nodes (p 0.55 and 0.70) get the largest entry.
    REQUIRE(z[1 * k + 2] == Approx(0.15));
    const auto pairs = h::truncate_adjacency(z, k, 1, 1);
    REQUIRE(pairs.front() == std::pair<std::size_t, std::size_t>{1, 2});
    REQUIRE(h::active_loss(h::adjusted_scores(z, p)) < l0);
  }
}

TEST_CASE("progressive schedules land on every reported length", "[nmlayer][schedule]") {
  namespace h = nmhash::hashing;
  const auto paper = h::preset("paper");
  REQUIRE(h::stage_targets(paper) == std::vector<std::size_t>{56, 52, 48, 44, 40, 36, 32, 28, 24, 20, 16, 12});
  REQUIRE(h::epochs_to_reach(paper, 48) == 3 * 45);
  const auto quick = h::preset("quick");
  REQUIRE(h::stage_targets(quick) == std::vector<std::size_t>{52, 48, 40, 32, 24, 16, 12});
  REQUIRE(h::epochs_to_reach(quick, 60) == 4);
  REQUIRE(h::epochs_to_reach(quick, 32) == 4 + 4 * 2);
  const auto plan = h::plan_epochs(quick);
  REQUIRE(plan.size() == 4 + 7 * 2);
  REQUIRE(plan[3].report_after);
  REQUIRE(plan[4].phase == h::epoch_phase::active);
  REQUIRE(plan[4].truncate_after);
  REQUIRE(plan[4].nodes_after == 52);
  REQUIRE(plan[5].phase == h::epoch_phase::frozen);
  REQUIRE(plan[5].nodes == 52);
  REQUIRE(plan[5].report_after);
  auto bad = quick;
  bad.lengths = {48, 50};
  REQUIRE_THROWS_WITH(h::stage_targets(bad), Catch::Contains("descend"));
  const auto medium = h::preset("medium");
  REQUIRE(h::stage_targets(medium) == h::stage_targets(quick));
  REQUIRE(h::plan_epochs(medium).size() == 67);
  REQUIRE(h::epochs_to_reach(medium, 48) == 4 + 2 * 9);
  REQUIRE_THROWS_WITH(h::preset("fast"), Catch::Contains("(quick, medium or paper)"));
  // The memory bank is re-encoded after a truncation in every preset.
  for (const auto& s : {paper, quick, medium}) REQUIRE(s.bank_after_truncation == h::bank_remap::recompute);
}

namespace {

bool have_fmnist() {
  return std::filesystem::exists(std::string(nmhash::data::default_fashion_mnist_dir) + "/train-images-idx3-ubyte.gz");
}

struct tiny_run {
  std::vector<std::size_t> train, val;
  std::vector<std::int32_t> train_labels, val_labels;

  // Every `stride`-th image of T' and every other image of V, with labels.
  template <class Pool, class Split>
  tiny_run(const Pool& pool, const Split& split, std::size_t stride) {
    for (std::size_t i = 0; i < split.train_nm.size(); i += stride) train.push_back(split.train_nm[i]);
    for (std::size_t i = 0; i < split.validation.size(); i += 2) val.push_back(split.validation[i]);
    for (auto i : train) train_labels.push_back(pool.labels[i]);
    for (auto i : val) val_labels.push_back(pool.labels[i]);
  }
};

// A 12 -> 8 bit NMLayer run (m = 4) on every 24th image of T': one warm-up,
// one active and one frozen epoch, the truncation after epoch 2, under the
// given memory-bank rule and optimizer reset.
struct truncation_run {
  using trainer = nmhash::hashing::progressive_trainer<float, nmhash::optim::adam<float>>;
  nmhash::data::image_pool pool = nmhash::data::load_fashion_mnist_pool();
  nmhash::data::fmnist_dpsh_splits split = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
  tiny_run d{pool, split, 24};
  nmhash::nn::sequential<float> net;
  nmhash::optim::adam<float> opt{nmhash::optim::group_table{{}, {1e-4, 0.0}}};
  std::unique_ptr<trainer> tr;

  truncation_run(nmhash::hashing::bank_remap bank, bool reset_optimizer) {
    namespace h = nmhash::hashing;
    h::progressive_schedule s;
    s.name = "test";
    s.b_in = 12;
    s.lengths = {8};
    s.merges = 4;
    s.warmup_epochs = 1;
    s.active_epochs = 1;
    s.frozen_epochs = 1;
    s.batch = 50;
    s.bank_after_truncation = bank;
    s.reset_optimizer = reset_optimizer;
    nmhash::nn::build_lenet(net, s.b_in, s.batch);
    net.initialize(3);
    tr = std::make_unique<trainer>(
        s, h::reduction::merge, net, opt,
        [](const auto& u, const auto& idx, const auto& bank_, auto& du) {
          return nmhash::loss::pairwise_eq7(u, idx, bank_, 10.0, du);
        },
        [this](const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, nmhash::tensor<float>& x,
               const h::batch_use&) { nmhash::data::gather_images(pool, ids, first, n, x); },
        d.train, nmhash::labels::single(d.train_labels), d.val, nmhash::labels::single(d.val_labels), 3);
  }
  truncation_run(const truncation_run&) = delete;  // the trainer reads this run's pool
  truncation_run& operator=(const truncation_run&) = delete;
};

}  // namespace

TEST_CASE("a short progressive run goes from 16 to 8 bits and resumes exactly", "[nmlayer][train][fmnist]") {
  if (!have_fmnist()) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  namespace h = nmhash::hashing;
  const auto pool = nmhash::data::load_fashion_mnist_pool();
  const auto split = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
  const tiny_run d(pool, split, 16);

  h::progressive_schedule s;
  s.name = "test";
  s.b_in = 16;
  s.lengths = {12, 8};
  s.merges = 4;
  s.warmup_epochs = 1;
  s.active_epochs = 1;
  s.frozen_epochs = 1;
  s.batch = 50;
  s.validation_refresh = 2;
  using trainer_t = h::progressive_trainer<float, nmhash::optim::adam<float>>;
  struct model {
    nmhash::nn::sequential<float> net;
    nmhash::optim::adam<float> opt{nmhash::optim::group_table{{}, {1e-4, 0.0}}};
    std::unique_ptr<trainer_t> tr;
  };
  auto make = [&](model& m) {
    nmhash::nn::build_lenet(m.net, s.b_in, s.batch);
    m.net.initialize(7);
    m.tr = std::make_unique<trainer_t>(
        s, h::reduction::merge, m.net, m.opt,
        [](const auto& u, const auto& idx, const auto& bank, auto& du) {
          return nmhash::loss::pairwise_eq7(u, idx, bank, 10.0, du);
        },
        [&](const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, nmhash::tensor<float>& x,
            const h::batch_use&) { nmhash::data::gather_images(pool, ids, first, n, x); },
        d.train, nmhash::labels::single(d.train_labels), d.val, nmhash::labels::single(d.val_labels), 7);
  };
  model a;
  make(a);
  std::vector<std::size_t> reported;
  a.tr->on_report = [&](const h::planned_epoch&, std::size_t) { reported.push_back(a.tr->nm().nodes()); };
  nmhash::io::tensor_map saved;
  std::map<std::string, std::string> meta;
  a.tr->on_epoch = [&](std::size_t done) {
    if (done == 2) a.tr->save_state(saved, meta);  // after the first truncation
  };
  a.tr->run();
  REQUIRE(reported == std::vector<std::size_t>{16, 12, 8});
  const auto& part = a.tr->nm().partition();
  REQUIRE(part.nodes() == 8);
  std::size_t covered = 0;
  for (const auto& g : part.groups()) covered += g.size();
  REQUIRE(covered == 16);  // merges, not drops
  const auto codes = a.tr->encode(d.val);
  REQUIRE(codes.bits() == 8);
  REQUIRE(codes.size() == d.val.size());
  // Binary codes that still carry information: more than one distinct code.
  std::set<std::uint64_t> distinct;
  for (std::size_t i = 0; i < codes.size(); ++i) distinct.insert(codes.row(i)[0]);
  REQUIRE(distinct.size() > 1);
  REQUIRE(a.tr->history().size() == 5);
  REQUIRE(a.tr->history()[1].phase == h::epoch_phase::active);
  REQUIRE(a.tr->history()[1].scoring_seconds > 0);

  // Resume from the state after epoch 2 in a fresh model: same end point.
  const std::string path = (std::filesystem::temp_directory_path() / "nmhash_progressive_ck.safetensors").string();
  nmhash::io::save_safetensors(path, saved, meta);
  model b;
  make(b);
  b.tr->load_state(nmhash::io::load_safetensors(path), path);
  std::filesystem::remove(path);
  REQUIRE(b.tr->epochs_done() == 2);
  REQUIRE(b.tr->nm().nodes() == 12);
  b.tr->run();
  REQUIRE(b.tr->nm().partition() == part);
  REQUIRE(b.net.parameters() == a.net.parameters());
}

TEST_CASE("a truncation can recompute the memory bank and reset the optimizer", "[nmlayer][train][fmnist]") {
  if (!have_fmnist()) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  namespace h = nmhash::hashing;
  truncation_run run(h::bank_remap::recompute, true);
  auto& opt = run.opt;
  auto& tr = *run.tr;
  bool checked = false;
  tr.on_epoch = [&](std::size_t done) {
    if (done == 1) REQUIRE(opt.steps() > 0);
    if (done != 2) return;  // right after the truncation
    checked = true;
    REQUIRE(opt.steps() == 0);
    for (auto& [name, buf] : opt.state())
      for (float v : *buf) REQUIRE(v == 0.0f);
    const auto& part = tr.nm().partition();
    REQUIRE(part.nodes() == 8);
    REQUIRE(tr.bank().bits() == 8);
    // Each bank entry is the mean of the node's children's outputs over a
    // fresh evaluation-mode encoding.
    nmhash::tensor<float> x;
    nmhash::data::gather_images(run.pool, run.d.train, 0, 40, x);
    const auto& v = run.net.forward(x, false);
    for (std::size_t r = 0; r < 40; ++r)
      for (std::size_t g = 0; g < 8; ++g) {
        double sum = 0;
        for (std::size_t c : part.children(g)) sum += v[r * 12 + c];
        REQUIRE(tr.bank().rows()[r * 8 + g] == Approx(sum / static_cast<double>(part.children(g).size())).margin(1e-6));
      }
  };
  tr.run();
  REQUIRE(checked);
  REQUIRE(opt.steps() > 0);  // the frozen epoch trained on
}

TEST_CASE("a truncation can average the merged nodes' memory-bank columns", "[nmlayer][train][fmnist]") {
  if (!have_fmnist()) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  namespace h = nmhash::hashing;
  truncation_run run(h::bank_remap::mean_columns, false);
  const auto& d = run.d;
  auto& tr = *run.tr;
  // The bank and the grouping after the last batch before the truncation.
  std::vector<float> rows_before;
  std::vector<std::size_t> node_before;
  tr.on_batch = [&](const h::epoch_record& rec, std::size_t done, std::size_t total) {
    if (rec.epoch != 2 || done != total) return;
    rows_before.assign(tr.bank().rows(), tr.bank().rows() + tr.bank().size() * tr.bank().bits());
    node_before = tr.nm().partition().node_ids();
  };
  bool checked = false;
  tr.on_epoch = [&](std::size_t done) {
    if (done != 2) return;  // right after the truncation
    checked = true;
    REQUIRE(rows_before.size() == d.train.size() * 12);
    const auto& part = tr.nm().partition();
    REQUIRE(part.nodes() == 8);
    REQUIRE(tr.bank().bits() == 8);
    std::size_t merged = 0;
    for (std::size_t g = 0; g < 8; ++g) {
      std::vector<std::size_t> olds;
      for (std::size_t c : part.children(g))
        if (std::find(olds.begin(), olds.end(), node_before[c]) == olds.end()) olds.push_back(node_before[c]);
      merged += olds.size() > 1;
      for (std::size_t r = 0; r < d.train.size(); ++r) {
        double sum = 0;
        for (std::size_t o : olds) sum += rows_before[r * 12 + o];
        REQUIRE(tr.bank().rows()[r * 8 + g] == Approx(sum / static_cast<double>(olds.size())).margin(1e-6));
      }
    }
    REQUIRE(merged >= 1);
  };
  tr.run();
  REQUIRE(checked);
}

TEST_CASE("a hashing model file carries the network and the grouping", "[nmlayer][io]") {
  namespace h = nmhash::hashing;
  auto build = [](nmhash::nn::sequential<float>& net, std::uint64_t seed) {
    net.add(nmhash::nn::linear<float>(5, 6));
    net.build(nmhash::shape4{2, 5});
    net.initialize(seed);
  };
  nmhash::nn::sequential<float> a, b, c;
  build(a, 1);
  build(b, 2);
  build(c, 3);
  const auto part = neuron_partition::from_groups(6, {{0, 4}, {1}, {2, 3}});  // neuron 5 unused
  const std::string path = (std::filesystem::temp_directory_path() / "nmhash_model_io.safetensors").string();
  h::save_hashing_model(path, a, part, {{"model", "test"}});
  REQUIRE(h::load_hashing_model(path, b) == part);
  REQUIRE(b.parameters() == a.parameters());
  REQUIRE(nmhash::io::load_safetensors(path).metadata.at("bits") == "3");
  // A grouping over another width is refused with the file named.
  nmhash::nn::sequential<float> narrow;
  narrow.add(nmhash::nn::linear<float>(5, 4));
  narrow.build(nmhash::shape4{2, 5});
  REQUIRE_THROWS_WITH(h::save_hashing_model(path + ".x", narrow, part), Catch::Contains("covers 6 neurons"));
  // A plain network file loads as the identity grouping.
  nmhash::nn::save_parameters(path, c);
  REQUIRE(h::load_hashing_model(path, b) == neuron_partition(6));
  std::filesystem::remove(path);
}
