// The example command-line tools, run as a user runs them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "nmhash/index/index_io.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nmhash.hpp"
#include "reference.hpp"
#include "run_command.hpp"
#include "temp_dir.hpp"

namespace {

struct fixture {
  temp_dir tmp;
  std::size_t nq = 30, n = 500, k = 40;
  nmhash::packed_codes q, d;
  std::vector<std::int64_t> ql, dl;
  fixture() {
    std::mt19937_64 g(99);
    q = ref::pack(ref::random_bits(nq, k, g), k);
    d = ref::pack(ref::random_bits(n, k, g), k);
    for (std::size_t i = 0; i < nq; ++i) ql.push_back(static_cast<std::int64_t>(g() % 4));
    for (std::size_t i = 0; i < n; ++i) dl.push_back(static_cast<std::int64_t>(g() % 4));
    std::vector<float> qf(nq * k);
    for (std::size_t i = 0; i < nq; ++i)
      for (std::size_t j = 0; j < k; ++j) qf[i * k + j] = q.bit(i, j) ? 0.5f : -0.5f;
    nmhash::io::write_npy(tmp.file("q.npy"), qf.data(), {nq, k});
    nmhash::io::save_codes_npy(tmp.file("d.npy"), d);
    nmhash::io::write_npy(tmp.file("ql.npy"), ql.data(), {nq});
    nmhash::io::write_npy(tmp.file("dl.npy"), dl.data(), {n});
  }
  std::string eval_cmd(const std::string& extra = "") const {
    return std::string(NMHASH_EVAL_BIN) + " --query-codes " + tmp.file("q.npy") + " --db-codes " +
           tmp.file("d.npy") + " --query-labels " + tmp.file("ql.npy") + " --db-labels " +
           tmp.file("dl.npy") + " --bits 40 " + extra;
  }
};

std::vector<std::int32_t> to32(const std::vector<std::int64_t>& v) {
  return std::vector<std::int32_t>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("nmhash_eval --json reports the library's values", "[tools]") {
  fixture f;
  const auto r = run(f.tmp, f.eval_cmd("--topk 50 --radius 3 --loo --json"));
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  nmhash::evaluation_options opt;
  opt.map_at = {50};
  opt.radius = 3;
  const auto QL = nmhash::labels::single(to32(f.ql)), DL = nmhash::labels::single(to32(f.dl));
  const auto ev = nmhash::evaluate(f.q, f.d, QL, DL, opt);
  REQUIRE(j["bits"] == 40);
  REQUIRE(j["map"]["tie_aware"].get<double>() == Catch::Detail::Approx(ev.map.tie_aware).margin(1e-12));
  REQUIRE(j["map"]["index_order"].get<double>() == Catch::Detail::Approx(ev.map.index_order).margin(1e-12));
  REQUIRE(j["map_at"][0]["k"] == 50);
  REQUIRE(j["map_at"][0]["tie_aware"].get<double>() == Catch::Detail::Approx(ev.map_at[0].tie_aware).margin(1e-12));
  REQUIRE(j["precision_within_radius"].get<double>() == Catch::Detail::Approx(ev.within_radius.precision).margin(1e-12));
  REQUIRE(j["pr_curve"].size() == 41);
  const auto loo = nmhash::leave_one_bit_out_map(f.q, f.d, QL, DL);
  REQUIRE(j["loo_map"]["tie_aware"]["without_bit"].size() == 40);
  REQUIRE(j["loo_map"]["tie_aware"]["without_bit"][7].get<double>() == Catch::Detail::Approx(loo.without_bit[7]).margin(1e-12));
  const auto table = run(f.tmp, f.eval_cmd());
  REQUIRE(table.status == 0);
  REQUIRE_THAT(table.out, Catch::Contains("MAP") && Catch::Contains("index-order"));
}

TEST_CASE("nmhash_eval rejects bad input with one clear line", "[tools]") {
  fixture f;
  auto expect_error = [&](const std::string& cmd, const std::string& needle) {
    const auto r = run(f.tmp, cmd);
    REQUIRE(r.status != 0);
    REQUIRE_THAT(r.err, Catch::Contains(needle));
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  // Labels count disagrees with codes.
  nmhash::io::write_npy(f.tmp.file("short.npy"), f.dl.data(), {f.n - 1});
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("q.npy") + " --db-codes " + f.tmp.file("d.npy") +
                   " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " + f.tmp.file("short.npy") + " --bits 40",
               "short.npy: 499 labels for 500 database codes");
  // Code length mismatch: 40-bit queries against 48-bit database codes.
  nmhash::io::save_codes_npy(f.tmp.file("d48.npy"), nmhash::packed_codes(f.n, 48));
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("q.npy") + " --db-codes " + f.tmp.file("d48.npy") +
                   " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " + f.tmp.file("dl.npy"),
               "code length mismatch");
  // Truncated file.
  const std::string raw = read_bytes(f.tmp.file("q.npy"));
  write_bytes(f.tmp.file("cut.npy"), raw.substr(0, raw.size() - 10));
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("cut.npy") + " --db-codes " + f.tmp.file("d.npy") +
                   " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " + f.tmp.file("dl.npy") + " --bits 40",
               "cut.npy: truncated data");
  // Fortran order.
  write_bytes(f.tmp.file("fortran.npy"), npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (30, 40), }", std::string(30 * 40 * 4, '\0')));
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("fortran.npy") + " --db-codes " + f.tmp.file("d.npy") +
                   " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " + f.tmp.file("dl.npy") + " --bits 40",
               "fortran.npy: Fortran-order array");
  // Wrong dtype for labels.
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("q.npy") + " --db-codes " + f.tmp.file("d.npy") +
                   " --query-labels " + f.tmp.file("q.npy") + " --db-labels " + f.tmp.file("dl.npy") + " --bits 40",
               "multi-hot labels must be 0 or 1");
  // Not a .npy at all.
  write_bytes(f.tmp.file("junk.npy"), "garbage");
  expect_error(std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("junk.npy") + " --db-codes " + f.tmp.file("d.npy") +
                   " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " + f.tmp.file("dl.npy"),
               "junk.npy: not a .npy file");
}

TEST_CASE("nmhash_search writes FAISS-layout results equal to hamming_knn", "[tools]") {
  fixture f;
  const std::string prefix = f.tmp.file("res");
  const auto r = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("q.npy") + " --db " + f.tmp.file("d.npy") +
                                " --bits 40 --k 25 --threads 2 --out " + prefix);
  REQUIRE(r.status == 0);
  REQUIRE_THAT(r.out, Catch::Contains("searched 30 queries x 500 items"));
  const auto D = nmhash::io::read_npy(prefix + "_D.npy");
  const auto I = nmhash::io::read_npy(prefix + "_I.npy");
  REQUIRE(D.dtype_name() == "int32");
  REQUIRE(I.dtype_name() == "int64");
  REQUIRE(D.shape == std::vector<std::size_t>{30, 25});
  const auto knn = nmhash::hamming_knn(f.q, f.d, 25);
  REQUIRE(D.to_vector<std::int32_t>() == knn.distances);
  REQUIRE(I.to_vector<std::int64_t>() == knn.indices);
  nmhash::io::save_codes_npy(f.tmp.file("d48.npy"), nmhash::packed_codes(f.n, 48));
  const auto bad = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("q.npy") + " --db " + f.tmp.file("d48.npy") +
                                  " --k 5 --out " + prefix);
  REQUIRE(bad.status != 0);
  REQUIRE_THAT(bad.err, Catch::Contains("code length mismatch"));
}

TEST_CASE("nmhash_index builds, converts and describes index files, nmhash_search searches them", "[tools][index]") {
  fixture f;
  const std::string idx = f.tmp.file("db.nmhi"), faiss = f.tmp.file("db.faissindex");
  std::vector<std::int64_t> ids(f.n);
  for (std::size_t i = 0; i < f.n; ++i) ids[i] = static_cast<std::int64_t>(f.n - i) * 1000;
  nmhash::io::write_npy(f.tmp.file("ids.npy"), ids.data(), {f.n});
  const auto built = run(f.tmp, std::string(NMHASH_INDEX_BIN) + " build --codes " + f.tmp.file("d.npy") + " --bits 40 --ids " +
                                    f.tmp.file("ids.npy") + " --out " + idx);
  REQUIRE(built.status == 0);
  REQUIRE_THAT(built.out, Catch::Contains("nmhash index, format version 1") && Catch::Contains("codes: 500 of K = 40 bits (5 bytes each)") &&
                              Catch::Contains("ids: stored with the codes"));
  const auto conv = run(f.tmp, std::string(NMHASH_INDEX_BIN) + " convert --in " + idx + " --out " + faiss + " --format faiss");
  REQUIRE(conv.status == 0);
  REQUIRE_THAT(conv.out, Catch::Contains("IndexBinaryIDMap"));
  const auto want = nmhash::hamming_knn(f.q, f.d, 25);
  for (const auto& [db, method] : {std::pair{idx, "flat"}, std::pair{faiss, "flat"}, std::pair{idx, "mih"},
                                   std::pair{f.tmp.file("d.npy"), "mih"}}) {
    INFO(db << " " << method);
    const std::string prefix = f.tmp.file("res");
    const auto r = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("q.npy") + " --db " + db +
                                  " --bits 40 --k 25 --threads 2 --method " + method + " --out " + prefix);
    REQUIRE(r.status == 0);
    if (db.size() > 4 && db.substr(db.size() - 4) == ".npy") {  // row numbers, not the stored ids
      REQUIRE(nmhash::io::read_npy(prefix + "_I.npy").to_vector<std::int64_t>() == want.indices);
      continue;
    }
    REQUIRE(nmhash::io::read_npy(prefix + "_D.npy").to_vector<std::int32_t>() == want.distances);
    const auto I = nmhash::io::read_npy(prefix + "_I.npy").to_vector<std::int64_t>();
    for (std::size_t e = 0; e < I.size(); ++e) REQUIRE(I[e] == ids[static_cast<std::size_t>(want.indices[e])]);
  }
  // A FAISS file written by faiss-cpu, searched with its own stored ids;
  // packed query bytes are read in FAISS's order by default, so the
  // neighbours are FAISS's without --bit-order, and msb differs.
  const std::string fx = std::string(NMHASH_TEST_DATA) + "/faiss/idmap64";
  const std::string prefix = f.tmp.file("fx");
  const auto r = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + fx + "_queries.npy --db " + fx +
                                ".faissindex --k 7 --out " + prefix);
  REQUIRE(r.status == 0);
  REQUIRE(nmhash::io::read_npy(prefix + "_I.npy").to_vector<std::int64_t>() ==
          nmhash::io::read_npy(fx + "_I.npy").to_vector<std::int64_t>());
  const auto r_msb = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + fx + "_queries.npy --bit-order msb --db " +
                                    fx + ".faissindex --k 7 --out " + prefix + "_msb");
  REQUIRE(r_msb.status == 0);
  REQUIRE(nmhash::io::read_npy(prefix + "_msb_I.npy").to_vector<std::int64_t>() !=
          nmhash::io::read_npy(fx + "_I.npy").to_vector<std::int64_t>());
  // Codes written by nmhash (save_codes_npy's default) index into a FAISS
  // file and search it back with the same neighbours as the .npy database.
  {
    std::mt19937_64 gq(11);
    const auto db_bits = ref::random_bits(300, 40, gq);
    nmhash::io::save_codes_npy(f.tmp.file("order_db.npy"), ref::pack(db_bits, 40));
    nmhash::io::save_codes_npy(f.tmp.file("order_q.npy"), ref::pack({db_bits[0], db_bits[5], db_bits[9]}, 40));
    REQUIRE(run(f.tmp, std::string(NMHASH_INDEX_BIN) + " build --codes " + f.tmp.file("order_db.npy") + " --out " +
                           f.tmp.file("order.faissindex") + " --format faiss").status == 0);
    for (const std::string& db : {f.tmp.file("order_db.npy"), f.tmp.file("order.faissindex")}) {
      REQUIRE(run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("order_q.npy") + " --db " + db +
                             " --k 1 --out " + f.tmp.file("order_out")).status == 0);
      const auto D = nmhash::io::read_npy(f.tmp.file("order_out") + "_D.npy").to_vector<std::int32_t>();
      const auto I = nmhash::io::read_npy(f.tmp.file("order_out") + "_I.npy").to_vector<std::int64_t>();
      REQUIRE(D == std::vector<std::int32_t>{0, 0, 0});
      REQUIRE(I == std::vector<std::int64_t>{0, 5, 9});
    }
  }
  const auto info = run(f.tmp, std::string(NMHASH_INDEX_BIN) + " info " + fx + ".faissindex");
  REQUIRE(info.status == 0);
  REQUIRE_THAT(info.out, Catch::Contains("IndexBinaryIDMap") && Catch::Contains("codes: 60 of K = 64 bits"));

  // Bad input: one clear line each.
  auto expect_error = [&](const std::string& cmd, const std::string& needle) {
    const auto e = run(f.tmp, cmd);
    REQUIRE(e.status != 0);
    REQUIRE_THAT(e.err, Catch::Contains(needle));
    REQUIRE(std::count(e.err.begin(), e.err.end(), '\n') == 1);
  };
  nmhash::io::write_npy(f.tmp.file("short_ids.npy"), ids.data(), {f.n - 1});
  expect_error(std::string(NMHASH_INDEX_BIN) + " build --codes " + f.tmp.file("d.npy") + " --bits 40 --ids " +
                   f.tmp.file("short_ids.npy") + " --out " + f.tmp.file("x.nmhi"),
               "short_ids.npy: 499 ids for 500 codes");
  expect_error(std::string(NMHASH_INDEX_BIN) + " convert --in " + f.tmp.file("d.npy") + " --out " + f.tmp.file("y") +
                   " --format nmhash",
               "neither an nmhash index file");
  const std::string raw = read_bytes(idx);
  write_bytes(f.tmp.file("cut.nmhi"), raw.substr(0, raw.size() - 3));
  expect_error(std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("q.npy") + " --bits 40 --db " + f.tmp.file("cut.nmhi") +
                   " --k 3 --out " + f.tmp.file("z"),
               "(truncated)");
  REQUIRE_FALSE(std::filesystem::exists(f.tmp.file("x.nmhi")));
  REQUIRE_FALSE(std::filesystem::exists(f.tmp.file("z_D.npy")));

  // Filtered: --allow-ids and --deny-ids give the library's filtered
  // search, flat and mih, over .npy positions and stored ids.
  std::mt19937_64 gf(12);
  const auto fdb = ref::pack(ref::random_bits(500, 24, gf, 0.3), 24);
  const auto fq = ref::pack(ref::random_bits(4, 24, gf, 0.3), 24);
  nmhash::io::save_codes_npy(f.tmp.file("f_db.npy"), fdb);
  nmhash::io::save_codes_npy(f.tmp.file("f_q.npy"), fq);
  nmhash::binary_index by_position(24), by_id(24);
  by_position.add(fdb);
  std::vector<std::int64_t> fids(500);
  for (std::size_t j = 0; j < 500; ++j) fids[j] = static_cast<std::int64_t>(90000 - 3 * j);
  by_id.add_with_ids(fdb, fids);
  nmhash::io::save_index(by_id, f.tmp.file("f.nmhidx"));
  for (const bool stored : {false, true}) {
    const std::vector<std::int64_t>& id = stored ? fids : std::vector<std::int64_t>{};
    std::vector<std::int64_t> allow, deny;
    for (std::size_t j = 0; j < 500; ++j) {
      const std::int64_t v = stored ? id[j] : static_cast<std::int64_t>(j);
      if (j % 4 != 0) allow.push_back(v);
      if (j % 9 == 0) deny.push_back(v);
    }
    allow.push_back(-77);  // not in the database: ignored
    nmhash::io::write_npy(f.tmp.file("allow.npy"), allow.data(), {allow.size()});
    nmhash::io::write_npy(f.tmp.file("deny.npy"), deny.data(), {deny.size()});
    nmhash::search_filter filter = nmhash::search_filter::allow_ids(allow);
    filter.deny = deny;
    const auto want = (stored ? by_id : by_position).search(fq, 12, filter);
    for (const std::string method : {"flat", "mih"}) {
      const auto r = run(f.tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("f_q.npy") + " --db " +
                                    f.tmp.file(stored ? "f.nmhidx" : "f_db.npy") + " --k 12 --method " + method +
                                    " --allow-ids " + f.tmp.file("allow.npy") + " --deny-ids " + f.tmp.file("deny.npy") +
                                    " --out " + f.tmp.file("filtered"));
      INFO(method << (stored ? ", stored ids" : ", positions") << ": " << r.out << r.err);
      REQUIRE(r.status == 0);
      REQUIRE_THAT(r.out, Catch::Contains("filter: 333 of 500 codes admitted"));
      REQUIRE(nmhash::io::read_npy(f.tmp.file("filtered_D.npy")).to_vector<std::int32_t>() == want.distances);
      REQUIRE(nmhash::io::read_npy(f.tmp.file("filtered_I.npy")).to_vector<std::int64_t>() == want.indices);
    }
  }
  const std::vector<float> float_ids{1.0f, 2.0f};
  nmhash::io::write_npy(f.tmp.file("float_ids.npy"), float_ids.data(), {2});
  expect_error(std::string(NMHASH_SEARCH_BIN) + " --query " + f.tmp.file("f_q.npy") + " --db " + f.tmp.file("f_db.npy") +
                   " --k 3 --allow-ids " + f.tmp.file("float_ids.npy") + " --out " + f.tmp.file("w"),
               "float_ids.npy: ids must be integers, found dtype float32");
  REQUIRE_FALSE(std::filesystem::exists(f.tmp.file("w_D.npy")));
}

TEST_CASE("nmhash_train: every method trains and writes its summary, resumes only with the same settings",
          "[tools][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string limits = " --train-limit 256 --query-limit 40 --db-limit 300 --bits 12";
  for (const std::string method : {"dpsh", "eq7", "dhn", "hashnet", "dsh"}) {
    const std::string out = tmp.file("train-" + method);
    const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) + limits + " --epochs 1 --method " + method + " --out " + out);
    INFO(method << ": " << r.out << r.err);
    REQUIRE(r.status == 0);
    const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
    REQUIRE(summary["loss"] == method);
    REQUIRE(summary["epochs"] == 1);
    REQUIRE(summary["map_tie_aware"].get<double>() > 0.0);
    REQUIRE(std::filesystem::exists(out + "/db_codes.npy"));
  }
  const std::string cmd = std::string(NMHASH_TRAIN_BIN) + limits + " --method dsh --out " + tmp.file("train-dsh");
  const auto more = run(tmp, cmd + " --epochs 2");
  INFO(more.out << more.err);
  REQUIRE(more.status == 0);
  REQUIRE_THAT(more.err, Catch::Contains("after epoch 1"));
  const auto other = run(tmp, cmd + " --epochs 3 --lr 0.001");
  REQUIRE(other.status != 0);
  REQUIRE_THAT(other.err, Catch::Contains("checkpoint of another run: optimizer.lr = 0.0001 in the checkpoint, 0.001 here"));
}

TEST_CASE("nmhash_train --reduce-from: progressive NMLayer and Select runs write a model of --bits", "[tools][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string common = std::string(NMHASH_TRAIN_BIN) +
                             " --train-limit 256 --query-limit 40 --db-limit 300 --bits 8 --reduce-from 16 --merges 4"
                             " --epochs 1 --method eq7";
  for (const std::string reduction : {"merge", "select"}) {
    const std::string out = tmp.file("prog-" + reduction);
    const auto r = run(tmp, common + " --reduction " + reduction + " --out " + out);
    INFO(reduction << ": " << r.out << r.err);
    REQUIRE(r.status == 0);
    REQUIRE_THAT(r.out, Catch::Contains("progressive (" + reduction + ") from 16 bits"));
    const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
    REQUIRE(summary["bits"] == 8);
    REQUIRE(summary["b_in"] == 16);
    REQUIRE(summary["epochs"] == 1 + 2 * 2);  // warm-up, then 16 -> 12 -> 8 with N0 = N1 = 1
    REQUIRE(summary["history"][1]["phase"] == "active");
    REQUIRE(summary["history"].back()["nodes"] == 8);
    REQUIRE(summary["map_tie_aware"].get<double>() > 0.0);
    const std::string grouping = summary["grouping"];
    const auto model = nmhash::io::load_safetensors(out + "/model.safetensors");
    REQUIRE(model.metadata.at("bits") == "8");
    REQUIRE(model.metadata.at("b_in") == "16");
    // Merging keeps every neuron in some node; Select drops 8 of them.
    const std::size_t listed = static_cast<std::size_t>(std::count(grouping.begin(), grouping.end(), ',')) + 8;
    REQUIRE(listed == (reduction == "merge" ? 16u : 8u));
  }
  // The thread count changes nothing: the same bytes on 1 and 3 threads,
  // through the warm-up, the active phase's scoring and the truncations.
  for (const std::string t : {"1", "3"}) {
    const auto r = run(tmp, "OMP_NUM_THREADS=" + t + " " + common + " --reduction merge --out " + tmp.file("threads-" + t));
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
  }
  REQUIRE(read_bytes(tmp.file("threads-1/db_codes.npy")) == read_bytes(tmp.file("threads-3/db_codes.npy")));
  REQUIRE(read_bytes(tmp.file("threads-1/db_codes.npy")).size() > 300);
  // The memory bank is re-encoded after a truncation unless the earlier
  // rule (the mean of the merged columns) is asked for; the two train apart.
  {
    const auto r = run(tmp, common + " --reduction merge --bank-after-truncation mean_columns --out " + tmp.file("mean-cols"));
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    const auto rule = [&](const std::string& dir) {
      return nlohmann::json::parse(read_bytes(tmp.file(dir + "/summary.json")))["settings"]["schedule"]
          ["progressive"]["bank_after_truncation"].get<std::string>();
    };
    REQUIRE(rule("threads-1") == "recompute");
    REQUIRE(rule("mean-cols") == "mean_columns");
    const auto a = nmhash::io::load_safetensors(tmp.file("threads-1/model.safetensors"));
    const auto b = nmhash::io::load_safetensors(tmp.file("mean-cols/model.safetensors"));
    REQUIRE(a.tensors.size() == b.tensors.size());
    bool differ = false;
    for (const auto& [name, t] : a.tensors) differ = differ || t.bytes != b.tensors.at(name).bytes;
    REQUIRE(differ);
    const auto bad_rule = run(tmp, common + " --bank-after-truncation mean --out " + tmp.file("bad-rule"));
    REQUIRE(bad_rule.status != 0);
    REQUIRE_THAT(bad_rule.err, Catch::Contains("--bank-after-truncation"));
  }
  // A classifier to pretrain a backbone: one output per class, top-1
  // accuracy on the queries; another width is refused.
  const std::string cls = tmp.file("classify");
  const auto c = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --train-limit 256 --query-limit 40 --db-limit 300 "
                                                          "--bits 10 --epochs 1 --method classify --out " + cls);
  INFO(c.out << c.err);
  REQUIRE(c.status == 0);
  const auto cs = nlohmann::json::parse(read_bytes(cls + "/summary.json"));
  REQUIRE(cs["query_accuracy"].get<double>() >= 0.0);
  REQUIRE(cs["query_accuracy"].get<double>() <= 1.0);
  const auto wide = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --bits 12 --method classify --out " + tmp.file("c12"));
  REQUIRE(wide.status != 0);
  REQUIRE_THAT(wide.err, Catch::Contains("--method classify: --bits is 12, the data set has 10 classes"));
  const auto bad = run(tmp, std::string(NMHASH_TRAIN_BIN) + " --bits 16 --reduce-from 16 --out " + tmp.file("bad"));
  REQUIRE(bad.status != 0);
  REQUIRE_THAT(bad.err, Catch::Contains("--reduce-from 16 must exceed --bits 16"));
}

TEST_CASE("nmhash_train --device cuda trains on a GPU, or says why it cannot", "[tools][fmnist][cuda]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string out = tmp.file("train-cuda");
  const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) +
                              " --device cuda --train-limit 256 --query-limit 40 --db-limit 300 --bits 12 --epochs 1 --out " +
                              out);
  INFO(r.out << r.err);
  if (r.status == 0) {
    const auto summary = nlohmann::json::parse(read_bytes(out + "/summary.json"));
    REQUIRE(summary["device"].get<std::string>().rfind("cuda (", 0) == 0);
    REQUIRE(summary["map_tie_aware"].get<double>() > 0.0);
  } else {
    REQUIRE(r.status == 1);
    REQUIRE_THAT(r.err, Catch::Contains("--device cuda: no CUDA device is available") ||
                            Catch::Contains("--device cuda: this nmhash_train was built without CUDA"));
    REQUIRE_FALSE(std::filesystem::exists(out + "/summary.json"));
  }
}

TEST_CASE("nmhash_train and nmhash_reproduce resume each other's checkpoints of one configuration", "[tools][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  namespace fs = std::filesystem;
  temp_dir tmp;
  const std::string limits = " --train-limit 260 --query-limit 40 --db-limit 400";
  const std::string train = std::string(NMHASH_TRAIN_BIN) + limits + " --method eq7 --bits 32 --out ";
  const std::string trained = tmp.file("train"), repro = tmp.file("repro"), ref = tmp.file("ref");
  REQUIRE(run(tmp, train + trained + " --epochs 1").status == 0);
  // nmhash_reproduce's baseline-32 is the same run (eq7, Adam 1e-4, batch
  // 128, 32 bits, the same 260 training images): it continues nmhash_train's
  // checkpoint.
  const std::string run_dir = repro + "/seed-1/runs/baseline-32";
  fs::create_directories(run_dir);
  fs::copy_file(trained + "/checkpoint.safetensors", run_dir + "/checkpoint.safetensors");
  const auto r = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + limits +
                              " --variants baseline --baseline-epochs 2 --out " + repro);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  REQUIRE_THAT(r.out, Catch::Contains("[baseline-32] resuming after epoch 1 of 2"));
  REQUIRE_THAT(r.out, Catch::Contains("[baseline-32] epoch 2/2"));
  REQUIRE_THAT(r.out, !Catch::Contains("[baseline-32] epoch 1/2"));
  // And back: nmhash_train continues nmhash_reproduce's checkpoint, and ends
  // where an uninterrupted nmhash_train run ends.
  fs::copy_file(run_dir + "/checkpoint.safetensors", trained + "/checkpoint.safetensors",
                fs::copy_options::overwrite_existing);
  const auto back = run(tmp, train + trained + " --epochs 3");
  INFO(back.out << back.err);
  REQUIRE(back.status == 0);
  REQUIRE_THAT(back.err, Catch::Contains("after epoch 2"));
  REQUIRE(run(tmp, train + ref + " --epochs 3").status == 0);
  REQUIRE(read_bytes(trained + "/db_codes.npy") == read_bytes(ref + "/db_codes.npy"));
  REQUIRE(read_bytes(trained + "/query_codes.npy") == read_bytes(ref + "/query_codes.npy"));
  // Another configuration is refused with the field named.
  const auto other = run(tmp, std::string(NMHASH_TRAIN_BIN) + limits + " --method dpsh --bits 32 --epochs 4 --out " + trained);
  REQUIRE(other.status == 1);
  REQUIRE_THAT(other.err, Catch::Contains("checkpoint of another run: method.name = \"eq7\" in the checkpoint, \"dpsh\" here"));
}

TEST_CASE("nmhash_lsh_fmnist: ITQ beats random hyperplanes on fmnist-dpsh, and a missing data set is one clear error",
          "[tools][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const auto map_at = [&](const std::string& method) {
    const std::string out = tmp.file(method);
    const auto r = run(tmp, std::string(NMHASH_LSH_FMNIST_BIN) + " --method " + method + " --bits 16,32 --out " + out);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    const auto res = nlohmann::json::parse(read_bytes(out + "/results.json"));
    REQUIRE(res["protocol"] == "fmnist-dpsh");
    REQUIRE(res["queries"] == 1000);
    REQUIRE(res["database"] == 69000);
    REQUIRE(res["results"].size() == 2);
    std::vector<double> map;
    for (std::size_t i = 0; i < 2; ++i) {
      REQUIRE(res["results"][i]["bits"] == (i == 0 ? 16 : 32));
      map.push_back(res["results"][i]["map_tie_aware"].get<double>());
      // Ten balanced classes: a random ranking has a MAP near 0.1.
      REQUIRE(map.back() > 0.15);
      REQUIRE(map.back() < 1.0);
      REQUIRE(std::abs(map.back() - res["results"][i]["map_index_order"].get<double>()) < 0.01);
    }
    return map;
  };
  const auto lsh = map_at("lsh"), itq = map_at("itq");
  INFO("LSH " << lsh[0] << " " << lsh[1] << ", ITQ " << itq[0] << " " << itq[1]);
  // The data-dependent rotation is worth many MAP points at short codes
  // (Gong and Lazebnik 2011); longer codes rank better.
  REQUIRE(itq[0] > lsh[0] + 0.05);
  REQUIRE(itq[1] > lsh[1] + 0.05);
  REQUIRE(itq[1] > itq[0]);
  REQUIRE(lsh[1] > lsh[0]);

  const std::string out = tmp.file("missing");
  const auto bad = run(tmp, std::string(NMHASH_LSH_FMNIST_BIN) + " --data " + tmp.file("nothing") + " --out " + out);
  REQUIRE(bad.status == 1);
  REQUIRE(bad.err.find("train-images-idx3-ubyte.gz: cannot open file") != std::string::npos);
  REQUIRE_FALSE(std::filesystem::exists(out + "/results.json"));
}

TEST_CASE("nmhash_reproduce: a smoke-sized run writes every table, skips finished runs and resumes", "[tools][fmnist]") {
  if (!std::filesystem::exists(std::string("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string out = tmp.file("repro");
  const std::string cmd = std::string(NMHASH_REPRODUCE_BIN) + " --out " + out +
                          " --train-limit 260 --query-limit 40 --db-limit 400 --warmup-epochs 1 --baseline-epochs 2";
  const auto first = run(tmp, cmd + " --variants nmlayer,baseline,select,ours_star --seeds 2");
  INFO(first.out << first.err);
  REQUIRE(first.status == 0);
  for (const char* f : {"results.json", "table.csv", "differences.csv", "map_vs_length.csv", "loo_per_bit.csv",
                        "pr_curves.csv", "precision_at_n.csv", "precision_r2.csv", "seed-1/results.json",
                        "seed-1/table.csv", "seed-2/results.json", "seed-1/runs/nmlayer/model-32.safetensors",
                        "seed-2/runs/baseline-12/model-12.safetensors"})
    REQUIRE(std::filesystem::exists(out + "/" + f));
  const auto results = nlohmann::json::parse(read_bytes(out + "/seed-1/results.json"));
  REQUIRE(results["protocol"] == "fmnist-dpsh subset (smoke test)");
  REQUIRE(results["seed"] == 1);
  REQUIRE(results["machine"]["flags"].get<std::string>().find("-O") != std::string::npos);
  REQUIRE(results["runs"].size() == 1 + 4 + 1 + 1);
  const auto& nm = results["runs"][0];
  REQUIRE(nm["variant"] == "nmlayer");
  std::vector<std::size_t> lengths;
  for (const auto& r : nm["reports"]) lengths.push_back(r["bits"]);
  REQUIRE(lengths == std::vector<std::size_t>{60, 52, 48, 40, 32, 24, 16, 12});
  REQUIRE(nm["reports"][4].contains("loo"));
  REQUIRE(nm["reports"][4]["loo"]["without_bit"].size() == 32);
  REQUIRE(nm["scoring_share_of_active_epochs"].get<double>() > 0);
  for (const auto& r : nm["reports"]) {
    REQUIRE(r["distinct_database_codes"].get<std::size_t>() >= 1);
    REQUIRE(r["distinct_database_codes"].get<std::size_t>() <= 400);
    REQUIRE(r["largest_code_share"].get<double>() >= 1.0 / 400);
  }

  // Over the seeds: mean, sample standard deviation and paired differences
  // of the per-seed values.
  const auto results2 = nlohmann::json::parse(read_bytes(out + "/seed-2/results.json"));
  REQUIRE(results2["seed"] == 2);
  const auto all = nlohmann::json::parse(read_bytes(out + "/results.json"));
  REQUIRE(all["seeds"] == nlohmann::json::array({1, 2}));
  REQUIRE(all["protocol"] == "fmnist-dpsh subset (smoke test)");
  const auto map_of = [](const nlohmann::json& res, const std::string& variant, std::size_t bits) {
    for (const auto& run : res["runs"])
      if (run["variant"] == variant)
        for (const auto& rep : run["reports"])
          if (rep["bits"] == bits && rep.contains("pr_curve")) return rep["map_tie_aware"].get<double>();
    FAIL("no " << variant << " report at " << bits << " bits");
    return 0.0;
  };
  bool seen_cell = false, seen_diff = false;
  for (const auto& c : all["cells"])
    if (c["variant"] == "nmlayer" && c["bits"] == 24) {
      seen_cell = true;
      const double a = map_of(results, "nmlayer", 24), b = map_of(results2, "nmlayer", 24);
      REQUIRE(c["map_tie_aware"]["values"] == nlohmann::json::array({a, b}));
      REQUIRE(c["map_tie_aware"]["mean"].get<double>() == Catch::Detail::Approx((a + b) / 2));
      REQUIRE(c["map_tie_aware"]["sd"].get<double>() == Catch::Detail::Approx(std::abs(a - b) / std::sqrt(2.0)));
    }
  for (const auto& d : all["differences"])
    if (d["variant"] == "nmlayer" && d["versus"] == "baseline" && d["bits"] == 12) {
      seen_diff = true;
      const double d1 = map_of(results, "nmlayer", 12) - map_of(results, "baseline", 12);
      const double d2 = map_of(results2, "nmlayer", 12) - map_of(results2, "baseline", 12);
      REQUIRE(d["map_tie_aware_difference"]["values"][0].get<double>() == Catch::Detail::Approx(d1));
      REQUIRE(d["map_tie_aware_difference"]["values"][1].get<double>() == Catch::Detail::Approx(d2));
      const double mean = (d1 + d2) / 2, sd = std::abs(d1 - d2) / std::sqrt(2.0);
      REQUIRE(d["beyond_2sd"].get<bool>() == (std::abs(mean) > 2 * sd));
    }
  REQUIRE(seen_cell);
  REQUIRE(seen_diff);
  const std::string agg_table = read_bytes(out + "/table.csv");
  REQUIRE(agg_table.find("nmlayer,48,2,") != std::string::npos);
  REQUIRE(read_bytes(out + "/differences.csv").find("select,baseline,32,2,") != std::string::npos);

  // Ours*: B_in = 32 bits reduced to round(0.8 * 32) = 26 in one truncation
  // (m = 8 > 6), in the epochs of baseline-32, reported in the 32-bit column.
  const auto& star = results["runs"][6];
  REQUIRE(star["variant"] == "ours_star");
  REQUIRE(star["b_in"] == 32);
  REQUIRE(star["bits"] == 26);
  REQUIRE(star["epochs"] == results["runs"][2]["epochs"]);
  REQUIRE(results["runs"][2]["id"] == "baseline-32");
  REQUIRE(star["reports"].back()["bits"] == 26);
  REQUIRE(star["reports"].back().contains("pr_curve"));
  REQUIRE(agg_table.find("ours_star,32,2,") != std::string::npos);
  REQUIRE(read_bytes(out + "/differences.csv").find("ours_star,baseline,32,2,") != std::string::npos);
  REQUIRE(first.out.find("(B_in 32 -> 26 bits)") != std::string::npos);
  REQUIRE(first.out.find("nmlayer - baseline") != std::string::npos);
  REQUIRE(first.out.find("machine: ") != std::string::npos);
  REQUIRE(results["schedule"]["truncation"] == "top_m");
  const std::string table = read_bytes(out + "/seed-1/table.csv");
  for (const char* row : {"nmlayer,48,", "nmlayer,12,", "baseline,48,", "baseline,12,", "select,32,"})
    REQUIRE(table.find(row) != std::string::npos);

  // Finished runs are read back, not trained again.
  const auto second = run(tmp, cmd + " --variants nmlayer,baseline,select,ours_star --seeds 2");
  REQUIRE(second.status == 0);
  REQUIRE(second.out.find("[nmlayer] done before") != std::string::npos);
  REQUIRE(second.out.find("epoch") == std::string::npos);

  // Without its result, a run continues from its checkpoint (after the last
  // epoch: nothing to train) and reports the same numbers.
  const std::string result = out + "/seed-1/runs/nmlayer/result.json";
  const auto before = nlohmann::json::parse(read_bytes(result));
  std::filesystem::remove(result);
  const auto third = run(tmp, cmd + " --variants nmlayer");
  INFO(third.out << third.err);
  REQUIRE(third.status == 0);
  REQUIRE(third.out.find("resuming after epoch 15 of 15") != std::string::npos);
  REQUIRE(nlohmann::json::parse(read_bytes(result))["reports"] == before["reports"]);

  // --reported-only: the same training, evaluated at the reported lengths only.
  const std::string out_reported = tmp.file("repro-reported");
  const auto reported = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --out " + out_reported +
                                     " --train-limit 260 --query-limit 40 --db-limit 400 --warmup-epochs 1"
                                     " --variants nmlayer --reported-only");
  INFO(reported.out << reported.err);
  REQUIRE(reported.status == 0);
  const auto rep_only = nlohmann::json::parse(read_bytes(out_reported + "/seed-1/runs/nmlayer/result.json"));
  REQUIRE(rep_only["reports"].size() == 4);
  for (const auto& r : rep_only["reports"])
    REQUIRE(r["map_tie_aware"] == map_of(results, "nmlayer", r["bits"].get<std::size_t>()));

  // A finished run or a checkpoint from another schedule is refused, not
  // silently reused.
  const auto other_result = run(tmp, cmd + " --variants nmlayer --merges 6");
  REQUIRE(other_result.status == 1);
  REQUIRE(other_result.err.find("result of another seed, preset, data set or architecture") != std::string::npos);
  std::filesystem::remove(result);
  const auto other = run(tmp, cmd + " --variants nmlayer --merges 6");
  REQUIRE(other.status == 1);
  REQUIRE_THAT(other.err, Catch::Contains("checkpoint of another run: schedule.progressive.m = 8 in the checkpoint, 6 here"));

  // Equal-time baselines: as many epochs as fit in the nmlayer run's time to
  // reach each length; and every run's backbone from a model file.
  const auto timed = run(tmp, cmd + " --variants nmlayer,timed");
  INFO(timed.out << timed.err);
  REQUIRE(timed.status == 0);
  const auto with_timed = nlohmann::json::parse(read_bytes(out + "/seed-1/results.json"));
  REQUIRE(with_timed["runs"].size() == 1 + 4);
  for (std::size_t i = 1; i < 5; ++i) {
    REQUIRE(with_timed["runs"][i]["variant"] == "timed");
    REQUIRE(with_timed["runs"][i]["epochs"].get<std::size_t>() >= 1);
  }
  REQUIRE(read_bytes(out + "/differences.csv").find("timed,nmlayer,12,1,") != std::string::npos);
  const std::string out_init = tmp.file("repro-init");
  const auto init = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --out " + out_init +
                                 " --train-limit 260 --query-limit 40 --db-limit 400 --variants baseline"
                                 " --baseline-epochs 1 --ablation-lengths 32 --init-from " + out +
                                 "/seed-1/runs/nmlayer/model-32.safetensors");
  INFO(init.out << init.err);
  REQUIRE(init.status == 0);
  REQUIRE_THAT(init.out, Catch::Contains("model-32.safetensors: loaded 6 tensors, skipped 3"));

  // The NMLayer on top of other hashing losses (HashNet with its scaled tanh).
  for (const std::string method : {"dhn", "hashnet"}) {
    const std::string out2 = tmp.file("repro-" + method);
    const auto res = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --out " + out2 +
                                  " --train-limit 260 --query-limit 40 --db-limit 400 --warmup-epochs 1"
                                  " --variants nmlayer --method " + method);
    INFO(method << ": " << res.out << res.err);
    REQUIRE(res.status == 0);
    const auto r2 = nlohmann::json::parse(read_bytes(out2 + "/seed-1/results.json"));
    REQUIRE(r2["loss"] == method);
    REQUIRE(r2["runs"][0]["reports"].back()["bits"] == 12);
    REQUIRE(r2["runs"][0]["reports"].back()["map_tie_aware"].get<double>() > 0.0);
  }

  // One pair per node: the first truncation (m = 8) merges 8 disjoint pairs.
  const std::string out3 = tmp.file("repro-one-per-node");
  const auto op = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --out " + out3 +
                               " --train-limit 260 --query-limit 40 --db-limit 400 --warmup-epochs 1"
                               " --variants nmlayer --truncation one_per_node");
  INFO(op.out << op.err);
  REQUIRE(op.status == 0);
  const auto r3 = nlohmann::json::parse(read_bytes(out3 + "/seed-1/results.json"));
  REQUIRE(r3["schedule"]["truncation"] == "one_per_node");
  const auto& first52 = r3["runs"][0]["reports"][1];
  REQUIRE(first52["bits"] == 52);
  const std::string grouping = first52["grouping"];
  REQUIRE(std::count(grouping.begin(), grouping.end(), ',') == 8);  // 8 nodes of two neurons
  const auto bad = run(tmp, std::string(NMHASH_REPRODUCE_BIN) + " --out " + out3 + " --truncation greedy");
  REQUIRE(bad.status != 0);
  REQUIRE(bad.err.find("one_per_node") != std::string::npos);
}
