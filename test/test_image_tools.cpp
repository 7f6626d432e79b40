// nmhash_train, nmhash_encode and nmhash_eval on image-list data sets the
// test writes (PNG and JPEG, single- and multi-label, grey and RGB) and on
// CIFAR-10 batches, run as a user runs them.
#include <catch2/catch.hpp>

#include <algorithm>

#include <cstdlib>
#include <fstream>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "image_data.hpp"
#include "nmhash/data/cifar10.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/train/config.hpp"
#include "run_command.hpp"
#include "temp_dir.hpp"

namespace {

test_images::synthetic_options multi_label(std::size_t classes) {
  test_images::synthetic_options o;
  o.multi = true;
  o.classes = classes;
  return o;
}

const std::string small_arch = " --arch conv3p1-8,relu,maxpool2,flatten,fc32,relu --input-size 16";

std::string train_cmd(const std::string& data, const std::string& out, const std::string& extra, int bits = 16) {
  return std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + data + small_arch + " --bits " + std::to_string(bits) +
         " --epochs 2 --batch 16 --lr 0.001 --out " + out + " " + extra;
}

nlohmann::json eval_json(const temp_dir& tmp, const std::string& qc, const std::string& dc, const std::string& ql,
                         const std::string& dl, const std::string& extra = "") {
  const auto r = run(tmp, std::string(NMHASH_EVAL_BIN) + " --json --query-codes " + qc + " --db-codes " + dc +
                             " --query-labels " + ql + " --db-labels " + dl + " --bits 16 " + extra);
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("nmhash_train on an image list: every loss trains, nmhash_eval and nmhash_encode reproduce its outputs",
          "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::write_synthetic_list_dataset(data, {});
  for (const std::string loss : {"dpsh", "eq7", "dhn", "hashnet", "dsh"}) {
    const std::string out = tmp.file("out-" + loss);
    const auto r = run(tmp, train_cmd(data, out, "--method " + loss));
    INFO(loss << ": " << r.out << r.err);
    REQUIRE(r.status == 0);
    REQUIRE_THAT(r.out, Catch::Contains("decoded all 132 images"));
    const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
    REQUIRE(summary["labels"] == "single");
    REQUIRE(summary["classes"] == 3);
    REQUIRE(summary["input"] == "3x16x16");
    REQUIRE(summary["map"]["tie_aware"].get<double>() > 0.0);
    // The written codes and labels give the summary's values.
    const auto ev = eval_json(tmp, out + "/query_codes.npy", out + "/db_codes.npy", out + "/query_labels.npy",
                              out + "/db_labels.npy");
    REQUIRE(ev["map"] == summary["map"]);
  }
  // The model encodes the database list to the trainer's codes, and the
  // encoder's codes with the list's 0/1 labels evaluate to the same MAP.
  const std::string out = tmp.file("out-dpsh");
  const auto enc = run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + out + "/model.safetensors --list " + data +
                               "/database.txt --out " + tmp.file("db.npy") + " --labels-out " + tmp.file("dbl.npy") +
                               " --packed");
  INFO(enc.out << enc.err);
  REQUIRE(enc.status == 0);
  REQUIRE(read_bytes(tmp.file("db.npy")) == read_bytes(out + "/db_codes.npy"));
  const auto encq = run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + out + "/model.safetensors --list " + data +
                                "/test.txt --out " + tmp.file("q.npy") + " --labels-out " + tmp.file("ql.npy"));
  REQUIRE(encq.status == 0);
  const auto q = nmhash::io::load_codes_npy(tmp.file("q.npy"));
  const auto tq = nmhash::io::load_codes_npy(out + "/query_codes.npy", 16);
  REQUIRE(q.bits() == 16);
  REQUIRE(std::equal(q.data(), q.data() + q.size() * q.words_per_code(), tq.data()));
  const auto ql = nmhash::io::read_npy(tmp.file("ql.npy"));
  REQUIRE(ql.shape == std::vector<std::size_t>{24, 3});
  const auto ev = eval_json(tmp, tmp.file("q.npy"), tmp.file("db.npy"), tmp.file("ql.npy"), tmp.file("dbl.npy"));
  REQUIRE(ev["map"] == nlohmann::json::parse(read_bytes(out + "/summary.json"))["map"]);
}

TEST_CASE("a network with batch norm trains, and its model file (running statistics included) encodes to its codes",
          "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::write_synthetic_list_dataset(data, {});
  const std::string out = tmp.file("bn");
  const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + data +
                              " --arch conv3p1-8,bn,relu,maxpool2,flatten,fc32,bn,relu --input-size 16 --bits 16"
                              " --epochs 2 --batch 16 --lr 0.001 --out " + out);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto model = nmhash::io::load_safetensors(out + "/model.safetensors");
  for (const char* name : {"1.running_mean", "1.running_var", "6.running_mean", "6.running_var"}) {
    INFO(name);
    REQUIRE(model.tensors.count(name) == 1);
  }
  // Trained statistics, not the initial zeros and ones.
  std::vector<float> mean(8);
  model.at("1.running_mean", {8}, "model").copy_to(mean.data(), 8);
  REQUIRE(std::any_of(mean.begin(), mean.end(), [](float v) { return v != 0.0f; }));
  const auto enc = run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + out + "/model.safetensors --list " + data +
                               "/database.txt --out " + tmp.file("db.npy") + " --packed");
  INFO(enc.out << enc.err);
  REQUIRE(enc.status == 0);
  REQUIRE(read_bytes(tmp.file("db.npy")) == read_bytes(out + "/db_codes.npy"));
  // --raw: the network's outputs, whose signs are the codes (no merges here).
  const auto raw = run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + out + "/model.safetensors --list " + data +
                               "/database.txt --out " + tmp.file("raw.npy") + " --raw");
  INFO(raw.out << raw.err);
  REQUIRE(raw.status == 0);
  const auto y = nmhash::io::read_npy(tmp.file("raw.npy"));
  REQUIRE(y.shape == std::vector<std::size_t>{60, 16});
  const auto yv = y.to_vector<float>();
  REQUIRE(std::any_of(yv.begin(), yv.end(), [](float v) { return v != 1.0f && v != -1.0f; }));
  const auto dbc = nmhash::io::load_codes_npy(out + "/db_codes.npy", 16);
  for (std::size_t i = 0; i < 60; ++i)
    for (std::size_t k = 0; k < 16; ++k) REQUIRE(dbc.bit(i, k) == (yv[i * 16 + k] > 0));
  REQUIRE(run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + out + "/model.safetensors --list " + data +
                       "/database.txt --out " + tmp.file("x.npy") + " --raw --packed").status != 0);
  // nmhash_model describes the file; its export holds the statistics (and
  // PyTorch's counters), not the grouping.
  const auto info = run(tmp, std::string(NMHASH_MODEL_BIN) + " info " + out + "/model.safetensors");
  INFO(info.out << info.err);
  REQUIRE(info.status == 0);
  REQUIRE_THAT(info.out, Catch::Contains("B_in 16, 16 bits (no merges)"));
  REQUIRE(run(tmp, std::string(NMHASH_MODEL_BIN) + " export --model " + out + "/model.safetensors --out " +
                       tmp.file("sd.safetensors")).status == 0);
  const auto sd = nmhash::io::load_safetensors(tmp.file("sd.safetensors"));
  REQUIRE(sd.tensors.count("6.running_var") == 1);
  REQUIRE(sd.tensors.at("1.num_batches_tracked").dtype == "I64");
  REQUIRE(sd.tensors.count("nm.node_of") == 0);
  // The checkpoint carries them too: a rerun resumes and writes the same codes.
  const auto again = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + data +
                                  " --arch conv3p1-8,bn,relu,maxpool2,flatten,fc32,bn,relu --input-size 16 --bits 16"
                                  " --epochs 2 --batch 16 --lr 0.001 --out " + out);
  REQUIRE(again.status == 0);
  REQUIRE(read_bytes(tmp.file("db.npy")) == read_bytes(out + "/db_codes.npy"));
}

TEST_CASE("nmhash_train on a multi-label list of grey PNGs: every loss, an RGB and a grey network, MAP@k",
          "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::synthetic_options o = multi_label(4);
  o.channels = 1;
  o.format = "png";
  test_images::write_synthetic_list_dataset(data, o);
  // Every loss trains on the multi-hot labels (similar = a shared label).
  for (const std::string loss : {"dpsh", "eq7", "dhn", "hashnet"}) {
    const auto r = run(tmp, train_cmd(data, tmp.file("out-" + loss), "--method " + loss + " --channels 3"));
    INFO(loss << ": " << r.out << r.err);
    REQUIRE(r.status == 0);
    REQUIRE(nlohmann::json::parse(read_bytes(tmp.file("out-" + loss) + "/summary.json"))["map"]["tie_aware"] > 0.0);
  }
  const std::string out = tmp.file("out");
  const auto r = run(tmp, train_cmd(data, out, "--method dsh --channels 3"));
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
  REQUIRE(summary["labels"] == "multi");
  REQUIRE(summary["classes"] == 4);
  REQUIRE(summary["map_at"].size() == 1);
  REQUIRE(summary["map_at"][0]["k"] == 60);  // 5,000 capped at the database size
  const auto ql = nmhash::io::read_npy(out + "/query_labels.npy");
  REQUIRE(ql.shape == std::vector<std::size_t>{24, 4});
  const auto ev = eval_json(tmp, out + "/query_codes.npy", out + "/db_codes.npy", out + "/query_labels.npy",
                            out + "/db_labels.npy", "--topk 60");
  REQUIRE(ev["map"] == summary["map"]);
  REQUIRE(ev["map_at"][0]["tie_aware"] == summary["map_at"][0]["tie_aware"]);
  // One network input channel: the grey images go in as they are.
  const auto grey = run(tmp, train_cmd(data, tmp.file("grey"), "--method dsh --channels 1 --map-at 10"));
  INFO(grey.out << grey.err);
  REQUIRE(grey.status == 0);
  REQUIRE(nlohmann::json::parse(read_bytes(tmp.file("grey") + "/summary.json"))["input"] == "1x16x16");
}

TEST_CASE("nmhash_train picks the default network of a list from its measured image sizes", "[tools][images]") {
  temp_dir tmp;
  test_images::synthetic_options o;
  o.size = 32;
  o.train = 24;
  o.database = 24;
  o.test = 8;
  test_images::write_synthetic_list_dataset(tmp.file("small"), o);
  const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + tmp.file("small") +
                              " --bits 8 --epochs 1 --batch 8 --out " + tmp.file("out-small"));
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  REQUIRE_THAT(r.out, Catch::Contains("decoded all 56 images") && Catch::Contains("every image 32x32"));
  REQUIRE_THAT(r.out, Catch::Contains("architecture cifar (default for small images (every image 32x32 in the list)"));
  const auto summary = nlohmann::json::parse(read_bytes(tmp.file("out-small") + "/summary.json"));
  REQUIRE(summary["input"] == "3x32x32");
  // The list's defaults of what the command line leaves unset.
  REQUIRE_THAT(r.out, Catch::Contains("rmsprop lr 1e-05, batch 8, 1 epochs, pytorch initialisation"));
  REQUIRE_THAT(r.out, Catch::Contains("(--optimizer, --lr, --init: the defaults of an image list"));
  // One epoch of three batches at the default rate: too few steps, said.
  REQUIRE_THAT(r.out, Catch::Contains("WARNING: 1 epochs of 24 images are 3 optimizer steps"));
  REQUIRE(summary["optimizer"] == "rmsprop");
  REQUIRE(summary["init"] == "pytorch");
  REQUIRE(summary["batch"] == 8);
  const auto given = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + tmp.file("small") +
                                  " --bits 8 --epochs 1 --optimizer adam --lr 1e-4 --batch 8 --init kaiming --out " +
                                  tmp.file("out-given"));
  INFO(given.out << given.err);
  REQUIRE(given.status == 0);
  REQUIRE_THAT(given.out, Catch::Contains("adam lr 0.0001, batch 8, 1 epochs, kaiming initialisation"));
  REQUIRE_THAT(given.out, !Catch::Contains("the defaults of an image list") && !Catch::Contains("optimizer steps"));
  // The default epoch count makes at least min_steps steps, and 20 epochs
  // where those are more.
  using defaults = nmhash::train::list_defaults;
  REQUIRE(defaults::epochs(500, 64) == 100);  // 8 steps an epoch
  REQUIRE(defaults::epochs(501, 1) == 20);
  REQUIRE(defaults::epochs(24, 8) == 267);
  REQUIRE(defaults::epochs(0, 64) == 800);
  // Without the measurement (--no-verify) nothing is known of the sizes.
  const auto n = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + tmp.file("small") +
                              " --no-verify --bits 8 --epochs 1 --batch 8 --train-limit 8 --out " + tmp.file("out-nv") +
                              " --arch lenet --channels 3 --input-size 32");
  INFO(n.out << n.err);
  REQUIRE(n.status == 0);
}

TEST_CASE("nmhash_train refuses bad image data before training, naming the list line", "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::synthetic_options o;
  o.train = 10;
  o.database = 10;
  o.test = 4;
  test_images::write_synthetic_list_dataset(data, o);
  write_bytes(data + "/images/13.jpg", read_bytes(data + "/images/13.jpg").substr(0, 200));
  const std::string out = tmp.file("out");
  const auto r = run(tmp, train_cmd(data, out, ""));
  REQUIRE(r.status == 1);
  REQUIRE_THAT(r.err, Catch::Contains("nmhash_train: error: " + data + "/database.txt:4: " + data + "/images/13.jpg: "));
  REQUIRE_FALSE(std::filesystem::exists(out + "/checkpoint.safetensors"));
  REQUIRE_FALSE(std::filesystem::exists(out + "/summary.json"));
  std::ofstream(data + "/test.txt", std::ios::app) << "images/0.png 1 0\n";
  const auto r2 = run(tmp, train_cmd(data, out, ""));
  REQUIRE(r2.status == 1);
  REQUIRE_THAT(r2.err, Catch::Contains("test.txt:5: 2 labels, expected 3 as on " + data + "/train.txt:1"));
}

TEST_CASE("nmhash_train --init-from loads the matching tensors and lists the rest", "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::write_synthetic_list_dataset(data, {});
  REQUIRE(run(tmp, train_cmd(data, tmp.file("a"), "")).status == 0);
  const auto r = run(tmp, train_cmd(data, tmp.file("b"), "--init-from " + tmp.file("a") + "/model.safetensors", 24));
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  REQUIRE_THAT(r.out, Catch::Contains("loaded 4 tensors, skipped 3"));
  REQUIRE_THAT(r.out, Catch::Contains("skipped 6.weight: not a backbone tensor (the head keeps its initialisation)"));
  REQUIRE_THAT(r.out, Catch::Contains("skipped nm.node_of: the network has no such parameter"));
}

TEST_CASE("nmhash_train --dataset cifar10:DIR reads the binary batches", "[tools][images][cifar]") {
  temp_dir tmp;
  std::mt19937_64 g(8);
  // Each class brightens one colour plane, over noise.
  test_images::write_cifar10_batches(tmp.path.string(), [&](std::size_t i, std::size_t c, std::size_t q) {
    const std::size_t p = 1 + c * 1024 + q;
    return (p % 1024 < 512 ? 40 : 20) * (i % 10 % 3 == c) + static_cast<int>(g() % 16);
  });
  const std::string out = tmp.file("out");
  const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset cifar10:" + tmp.path.string() +
                             " --arch conv3p1-8,relu,maxpool2,flatten,fc32,relu --train-limit 200 --query-limit 50"
                             " --db-limit 300 --bits 12 --epochs 1 --out " + out);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  REQUIRE_THAT(r.out, Catch::Contains("input 3x32x32"));
  const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
  REQUIRE(summary["train_images"] == 200);
  REQUIRE(summary["map"]["tie_aware"].get<double>() > 0.0);
}

TEST_CASE("nmhash_reproduce on a multi-label image list: NMLayer scoring, MAP@k, and models nmhash_encode loads",
          "[tools][images]") {
  temp_dir tmp;
  const std::string data = tmp.file("ds");
  test_images::synthetic_options o = multi_label(4);
  o.train = 100;
  test_images::write_synthetic_list_dataset(data, o);
  const std::string out = tmp.file("rp");
  const auto r = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --dataset list:" + data + small_arch +
                             " --variants nmlayer --warmup-epochs 1 --out " + out);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto res = nlohmann::json::parse(read_bytes(out + "/seed-1/runs/nmlayer/result.json"));
  REQUIRE(res["reduction"] == "merge");
  const auto& reports = res["reports"];
  REQUIRE(reports.size() >= 4);
  const auto& last = reports.back();
  REQUIRE(last["bits"] == 12);
  REQUIRE(last["map_at"]["k"] == 60);
  // Active epochs scored the multi-label batches against V.
  bool scored = false;
  for (const auto& e : res["history"])
    if (e["phase"] == "active") scored = scored || e["batch_map"].get<double>() > 0;
  REQUIRE(scored);
  // The 12-bit model encodes queries and database to the reported MAP.
  const std::string model = out + "/seed-1/runs/nmlayer/model-12.safetensors";
  for (const char* part : {"test", "database"}) {
    const auto e = run(tmp, std::string(NMHASH_ENCODE_BIN) + " --model " + model + " --list " + data + "/" + part +
                               ".txt --packed --out " + tmp.file(std::string(part) + ".npy") + " --labels-out " +
                               tmp.file(std::string(part) + "_labels.npy"));
    INFO(e.err);
    REQUIRE(e.status == 0);
  }
  const auto ev = run(tmp, std::string(NMHASH_EVAL_BIN) + " --json --bits 12 --query-codes " + tmp.file("test.npy") +
                              " --db-codes " + tmp.file("database.npy") + " --query-labels " +
                              tmp.file("test_labels.npy") + " --db-labels " + tmp.file("database_labels.npy"));
  REQUIRE(ev.status == 0);
  REQUIRE(nlohmann::json::parse(ev.out)["map"]["tie_aware"] == last["map_tie_aware"]);
}

TEST_CASE("fmnist-dpsh written as a PNG image list trains to the protocol run's codes, bit for bit",
          "[tools][images][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string limits = " --train-limit 256 --query-limit 40 --db-limit 300";
  const auto w = run(tmp, std::string(NMHASH_FMNIST_TO_LIST_BIN) + limits + " --out " + tmp.file("list"));
  INFO(w.out << w.err);
  REQUIRE(w.status == 0);
  const std::string common = " --bits 16 --epochs 2 --method eq7 --out ";
  const auto a = run(tmp, std::string(NMHASH_TRAIN_BIN) + limits + common + tmp.file("protocol"));
  REQUIRE(a.status == 0);
  const auto b = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --dataset list:" + tmp.file("list") +
                             " --arch lenet --channels 1 --mean 0.286 --std 0.353 --no-flip --no-random-crop"
                             " --optimizer adam --lr 1e-4 --batch 128 --init kaiming" + common +
                             tmp.file("list-run"));
  INFO(b.out << b.err);
  REQUIRE(b.status == 0);
  for (const char* f : {"/query_codes.npy", "/db_codes.npy"})
    REQUIRE(read_bytes(tmp.file("protocol") + f) == read_bytes(tmp.file("list-run") + f));
}
