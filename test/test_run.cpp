// nmhash::train::run, the library's training run, used directly: a run
// interrupted after each epoch and resumed ends with the weights, grouping
// and history of an uninterrupted one; another configuration's checkpoint
// is refused naming the field; the reports come when they should.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "image_data.hpp"
#include "temp_dir.hpp"
#include "nmhash/train/run.hpp"

namespace {

namespace tr = nmhash::train;

tr::run_config small_config(const std::string& data) {
  tr::run_config c;
  c.data.dataset = "list:" + data;
  c.data.arch = "conv3p1-8,relu,maxpool2,flatten,fc32,relu";
  c.data.input_size = 16;
  c.loss = tr::method::dpsh;
  c.schedule = tr::run_config::fixed_schedule(12, 3);
  c.schedule.batch = 16;
  return c;
}

std::vector<float> weights(tr::run& r) {
  const auto& p = r.network().parameters();
  return std::vector<float>(p.begin(), p.end());
}

}  // namespace

TEST_CASE("train::run resumed after every epoch ends where an uninterrupted run ends", "[train][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::write_synthetic_list_dataset(data, {});
  for (const bool progressive : {false, true}) {
    INFO((progressive ? "progressive" : "fixed length"));
    tr::run_config c = small_config(data);
    if (progressive) {
      c.schedule.b_in = 16;
      c.schedule.lengths = {8};
      c.schedule.merges = 4;
      c.schedule.warmup_epochs = 1;
      c.schedule.active_epochs = c.schedule.frozen_epochs = 1;
    }
    const auto prepared = tr::prepare(c.data);
    const std::string name = progressive ? "p" : "f";
    tr::run whole(c, prepared, tmp.file(name + "-whole"));
    std::vector<std::size_t> stages;
    whole.on_stage = [&](std::size_t done, double) { stages.push_back(done); };
    whole.train();
    const std::size_t epochs = whole.plan().size();
    REQUIRE(whole.epochs_done() == epochs);
    REQUIRE(whole.history().size() == epochs);
    REQUIRE(whole.nodes() == c.bits());
    if (progressive)
      REQUIRE(stages == std::vector<std::size_t>{1, 3, 5});  // warm-up, then each stage's frozen epoch
    else
      REQUIRE(stages == std::vector<std::size_t>{3});

    // The same run, one epoch per process lifetime.
    for (std::size_t e = 1; e <= epochs; ++e) {
      tr::run_config ce = c;
      if (!progressive) ce.schedule.warmup_epochs = e;  // a fixed-length run continues with more epochs
      tr::run part(ce, prepared, tmp.file(name + "-parts"));
      REQUIRE(part.resumed_epochs() == e - 1);
      std::size_t trained = 0;
      if (progressive) {
        // A progressive plan is fixed: one epoch, then the process stops
        // (an exception out of train(), after that epoch's checkpoint).
        part.on_epoch = [&](const tr::epoch_report& rep) {
          ++trained;
          REQUIRE(rep.epochs_done == e);
          throw std::runtime_error("stop");
        };
        REQUIRE_THROWS_WITH(part.train(), "stop");
      } else {
        part.on_epoch = [&](const tr::epoch_report& rep) {
          ++trained;
          REQUIRE(rep.epochs_done == e);
        };
        part.train();
      }
      REQUIRE(trained == 1);
    }
    tr::run last(c, prepared, tmp.file(name + "-parts"));
    REQUIRE(last.resumed_epochs() == epochs);
    REQUIRE(weights(last) == weights(whole));
    REQUIRE(last.grouping().str() == whole.grouping().str());
    auto h1 = last.history(), h2 = whole.history();
    for (auto* h : {&h1, &h2})
      for (auto& e : *h) {
        e.erase("seconds");
        e.erase("scoring_seconds");
      }
    REQUIRE(h1 == h2);
    const auto a = last.encode(prepared.split.database), b = whole.encode(prepared.split.database);
    REQUIRE(a.size() == b.size());
    REQUIRE(std::equal(a.data(), a.data() + a.size() * a.words_per_code(), b.data()));
  }
}

TEST_CASE("train::run refuses another configuration's checkpoint, naming the first field that differs",
          "[train][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::write_synthetic_list_dataset(data, {});
  tr::run_config c = small_config(data);
  c.schedule.warmup_epochs = 1;
  const auto prepared = tr::prepare(c.data);
  const std::string dir = tmp.file("run");
  {
    tr::run r(c, prepared, dir);
    r.train();
  }
  const auto refused = [&](tr::run_config other, const std::string& message) {
    REQUIRE_THROWS_WITH(tr::run(other, prepared, dir), Catch::Contains(message));
  };
  tr::run_config lr = c;
  lr.schedule.backbone_lr = 1e-3;
  refused(lr, "checkpoint of another run: optimizer.lr = 0.0001 in the checkpoint, 0.001 here");
  tr::run_config seed = c;
  seed.seed = 2;
  refused(seed, "checkpoint of another run: seed = 1 in the checkpoint, 2 here");
  tr::run_config dropout = c;
  dropout.head.dropout = 0.5;
  refused(dropout, "checkpoint of another run: head.dropout (not in the checkpoint)");
  tr::run_config method = c;
  method.loss = tr::method::dhn;
  refused(method, "checkpoint of another run: method.name = \"dpsh\" in the checkpoint, \"dhn\" here");
  tr::run_config init = c;
  init.init = tr::weight_init::pytorch;
  refused(init, "checkpoint of another run: init (not in the checkpoint)");
  // What does not change the training is not part of it, and fewer epochs
  // than the checkpoint holds are refused.
  tr::run_config device_and_limits = c;
  device_and_limits.data.query_limit = 7;
  REQUIRE(tr::run(device_and_limits, tr::prepare(device_and_limits.data), dir).resumed_epochs() == 1);
  tr::run_config none = c;
  none.schedule.warmup_epochs = 0;
  refused(none, "checkpoint holds 1 epochs of training, this run has 0");
  tr::run_config fresh = lr;
  fresh.resume = false;
  REQUIRE(tr::run(fresh, prepared, dir).resumed_epochs() == 0);
}
