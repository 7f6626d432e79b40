// The tools under failing disks and killed processes: a file-size limit
// (ulimit -f, as a full disk), /dev/full as standard output, and SIGKILL
// just before each file-changing call (test/fault/kill_at.cpp). Afterwards:
// the exit status, one clear message, no half-written or mismatched output,
// no temporary files left for good, and a rerun that finishes without loss.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nmhash.hpp"
#include "reference.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

struct outcome {
  bool killed = false;  // ended by SIGKILL
  int code = -1;        // exit status otherwise
  std::string out, err;
};

// Runs `cmd` through sh; `env` is prefixed as VAR=value assignments.
outcome run(const temp_dir& tmp, const std::string& cmd, const std::string& env = "") {
  const std::string o = tmp.file("stdout.txt"), e = tmp.file("stderr.txt");
  const int rc = std::system(("env " + env + " " + cmd + " >" + o + " 2>" + e).c_str());
  outcome r;
  if (WIFSIGNALED(rc)) r.killed = WTERMSIG(rc) == SIGKILL;
  else if (WIFEXITED(rc)) {
    r.code = WEXITSTATUS(rc);
    r.killed = r.code == 128 + SIGKILL;
  }
  r.out = read_bytes(o);
  r.err = read_bytes(e);
  return r;
}

std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> t;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) t.push_back(e.path().string());
  return t;
}

// Files of `dir` (temporaries excluded) and their bytes.
std::map<std::string, std::string> contents(const std::string& dir, const std::vector<std::string>& names) {
  std::map<std::string, std::string> m;
  for (const auto& n : names)
    if (fs::exists(dir + "/" + n)) m[n] = read_bytes(dir + "/" + n);
  return m;
}

// Every file present holds the bytes `set` has for it.
bool subset_of(const std::map<std::string, std::string>& now, const std::map<std::string, std::string>& set) {
  for (const auto& [name, bytes] : now)
    if (!set.count(name) || set.at(name) != bytes) return false;
  return true;
}

long count_calls(const temp_dir& tmp, const std::string& cmd) {
  const std::string counter = tmp.file("calls.txt");
  const auto r = run(tmp, cmd, "LD_PRELOAD=" NMHASH_KILL_AT_LIB " NMHASH_KILL_COUNT=" + counter);
  REQUIRE(r.code == 0);
  return std::stol(read_bytes(counter));
}

const std::string kill_env(long at) { return "LD_PRELOAD=" NMHASH_KILL_AT_LIB " NMHASH_KILL_AT=" + std::to_string(at); }

struct codes_fixture {
  temp_dir tmp;
  codes_fixture() {
    std::mt19937_64 g(5);
    nmhash::io::save_codes_npy(tmp.file("q.npy"), ref::pack(ref::random_bits(20, 64, g), 64));
    nmhash::io::save_codes_npy(tmp.file("d.npy"), ref::pack(ref::random_bits(3000, 64, g), 64));
    std::vector<std::int32_t> l(3000);
    for (auto& x : l) x = static_cast<std::int32_t>(g() % 5);
    nmhash::io::write_npy(tmp.file("dl.npy"), l.data(), {l.size()});
    l.resize(20);
    nmhash::io::write_npy(tmp.file("ql.npy"), l.data(), {l.size()});
  }
  std::string search(std::size_t k, const std::string& prefix) const {
    return std::string(NMHASH_SEARCH_BIN) + " --query " + tmp.file("q.npy") + " --db " + tmp.file("d.npy") +
           " --k " + std::to_string(k) + " --out " + prefix;
  }
};

bool have_fmnist() { return fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); }

}  // namespace

TEST_CASE("nmhash_search under a file-size limit fails with EFBIG and keeps the old pair whole", "[tools][faults]") {
  codes_fixture f;
  const std::string prefix = f.tmp.file("res");
  REQUIRE(run(f.tmp, f.search(5, prefix)).code == 0);
  const auto before = contents(f.tmp.path.string(), {"res_D.npy", "res_I.npy"});
  // 20 KiB (bash counts 1024-byte blocks): the new _D.npy (20 x 200 int32) fits, the new _I.npy (int64)
  // does not.
  const auto r = run(f.tmp, "bash -c 'ulimit -f 20; exec " + f.search(200, prefix) + "'");
  REQUIRE(r.code == 1);
  REQUIRE_THAT(r.err, Catch::Contains("res_I.npy: write failed: File too large (EFBIG)"));
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  REQUIRE(contents(f.tmp.path.string(), {"res_D.npy", "res_I.npy"}) == before);
  REQUIRE(temporaries(f.tmp.path.string()).empty());
}

TEST_CASE("the tools exit non-zero when standard output is lost", "[tools][faults]") {
  codes_fixture f;
  const std::string eval = std::string(NMHASH_EVAL_BIN) + " --query-codes " + f.tmp.file("q.npy") + " --db-codes " +
                           f.tmp.file("d.npy") + " --query-labels " + f.tmp.file("ql.npy") + " --db-labels " +
                           f.tmp.file("dl.npy");
  const std::string e = f.tmp.file("err.txt");
  for (const std::string& cmd : {eval, eval + " --json", f.search(3, f.tmp.file("res"))}) {
    INFO(cmd);
    REQUIRE(run(f.tmp, cmd).code == 0);
    const int rc = std::system((cmd + " >/dev/full 2>" + e).c_str());
    REQUIRE(WIFEXITED(rc));
    REQUIRE(WEXITSTATUS(rc) == 1);
    REQUIRE_THAT(read_bytes(e), Catch::Contains("error: standard output: write failed: No space left on device"));
  }
}

TEST_CASE("nmhash_search killed before any file-changing call leaves the old pair or the new one, never a mix",
          "[tools][faults]") {
  codes_fixture f;
  const std::string dir = f.tmp.path.string(), prefix = f.tmp.file("res");
  const std::vector<std::string> pair = {"res_D.npy", "res_I.npy"};
  REQUIRE(run(f.tmp, f.search(7, prefix)).code == 0);
  const auto old_pair = contents(dir, pair);
  REQUIRE(run(f.tmp, f.search(9, prefix)).code == 0);
  const auto new_pair = contents(dir, pair);
  const long calls = count_calls(f.tmp, f.search(9, prefix));
  REQUIRE(calls >= 6);  // two files written and synced, two old files removed, two renames
  for (long at = 1; at <= calls; ++at) {
    INFO("killed before call " << at << " of " << calls);
    REQUIRE(run(f.tmp, f.search(7, prefix)).code == 0);
    REQUIRE(contents(dir, pair) == old_pair);
    REQUIRE(run(f.tmp, f.search(9, prefix), kill_env(at)).killed);
    // Every file present is from one run, the old or the new (a partner
    // may be absent, never stale).
    const auto now = contents(dir, pair);
    REQUIRE((subset_of(now, old_pair) || subset_of(now, new_pair)));
    REQUIRE(run(f.tmp, f.search(9, prefix)).code == 0);
    REQUIRE(contents(dir, pair) == new_pair);
    REQUIRE(temporaries(dir).empty());
  }
}

TEST_CASE("nmhash_train killed at file-changing calls and mid-epoch resumes to the same result", "[tools][faults][fmnist]") {
  if (!have_fmnist()) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string limits = " --train-limit 256 --query-limit 40 --db-limit 300 --bits 12 --method dsh";
  const std::vector<std::string> set = {"model.safetensors", "query_codes.npy", "db_codes.npy",
                                        "query_labels.npy",    "db_labels.npy",   "summary.json"};
  const auto train = [&](const std::string& out, int epochs) {
    return std::string(NMHASH_TRAIN_BIN) + limits + " --epochs " + std::to_string(epochs) + " --out " + out;
  };
  // Reference outputs after one and after two epochs, uninterrupted.
  const std::string ref1 = tmp.file("ref1"), ref2 = tmp.file("ref2");
  REQUIRE(run(tmp, train(ref1, 1)).code == 0);
  REQUIRE(run(tmp, train(ref2, 2)).code == 0);
  // The summary holds timings; everything else must match byte for byte.
  const auto comparable = [&](const std::string& dir) {
    auto m = contents(dir, set);
    if (m.count("summary.json")) {
      auto j = nlohmann::json::parse(m["summary.json"]);
      for (const char* k : {"train_seconds_this_run", "eval_seconds", "wall_seconds"}) j.erase(k);
      for (auto& h : j["history"]) h.erase("seconds");
      m["summary.json"] = j.dump();
    }
    return m;
  };
  const auto one = comparable(ref1), two = comparable(ref2);
  REQUIRE(one.size() == set.size());
  REQUIRE(one != two);

  const std::string work = tmp.file("work");
  fs::copy(ref1, work);
  const long calls = count_calls(tmp, train(work, 2));
  REQUIRE(calls >= 10);
  std::vector<long> points;
  for (long at = 1; at <= calls; at += 1 + calls / 12) points.push_back(at);
  points.push_back(calls);
  for (long at : points) {
    INFO("killed before call " << at << " of " << calls);
    fs::remove_all(work);
    fs::copy(ref1, work);
    REQUIRE(run(tmp, train(work, 2), kill_env(at)).killed);
    // Whatever is left is from one run: some or all of the one-epoch
    // outputs, or some or all of the two-epoch outputs, never a mix.
    const auto now = comparable(work);
    REQUIRE((subset_of(now, one) || subset_of(now, two)));
    if (fs::exists(work + "/checkpoint.safetensors")) (void)nmhash::io::load_safetensors(work + "/checkpoint.safetensors");
    const auto again = run(tmp, train(work, 2));
    INFO(again.out << again.err);
    REQUIRE(again.code == 0);
    REQUIRE(comparable(work) == two);
    REQUIRE(temporaries(work).empty());
  }
}

TEST_CASE("nmhash_train: a rerun keeps the history, fewer --epochs than the checkpoint holds is refused",
          "[tools][faults][fmnist]") {
  if (!have_fmnist()) {
    WARN("Fashion-MNIST is not installed (dataset-fashion-mnist); skipped");
    return;
  }
  temp_dir tmp;
  const std::string out = tmp.file("run");
  const std::string cmd = std::string(NMHASH_TRAIN_BIN) + " --train-limit 256 --query-limit 40 --db-limit 300 --bits 12 --out " + out;
  REQUIRE(run(tmp, cmd + " --epochs 2").code == 0);
  const auto first = nlohmann::json::parse(read_bytes(out + "/summary.json"));
  REQUIRE(first["history"].size() == 2);
  const auto rerun = run(tmp, cmd + " --epochs 2");
  REQUIRE(rerun.code == 0);
  const auto second = nlohmann::json::parse(read_bytes(out + "/summary.json"));
  REQUIRE(second["history"] == first["history"]);
  REQUIRE(second["map_tie_aware"] == first["map_tie_aware"]);
  const auto fewer = run(tmp, cmd + " --epochs 1");
  REQUIRE(fewer.code == 1);
  REQUIRE_THAT(fewer.err, Catch::Contains("checkpoint holds 2 epochs of training, this run has 1"));
  REQUIRE(nlohmann::json::parse(read_bytes(out + "/summary.json")) == second);
  // Under a file-size limit the checkpoint cannot be written: EFBIG, and no
  // temporary file is left behind.
  const auto limited = run(tmp, "bash -c 'ulimit -f 64; exec " + cmd + " --epochs 3'");
  REQUIRE(limited.code == 1);
  REQUIRE_THAT(limited.err, Catch::Contains("checkpoint.safetensors: write failed: File too large (EFBIG)"));
  REQUIRE(temporaries(out).empty());
  const auto resumed = run(tmp, cmd + " --epochs 3");
  REQUIRE(resumed.code == 0);
  REQUIRE(nlohmann::json::parse(read_bytes(out + "/summary.json"))["history"].size() == 3);
}
