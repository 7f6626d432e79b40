#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/index/mih.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/nmhash.hpp"
#include "reference.hpp"
#include "temp_dir.hpp"

namespace {

using Catch::Matchers::Contains;

// Brute force over (distance, position), mapped to ids.
void check_search(const nmhash::binary_index& idx, const ref::bits_t& qb, const ref::bits_t& db,
                  const std::vector<std::int64_t>& ids, std::size_t k, const nmhash::scan_options& opt = {}) {
  const auto res = idx.search(ref::pack(qb, idx.bits()), k, opt);
  REQUIRE(res.queries == qb.size());
  for (std::size_t i = 0; i < qb.size(); ++i) {
    std::vector<std::pair<int, std::size_t>> all;
    for (std::size_t j = 0; j < db.size(); ++j) all.emplace_back(ref::distance(qb[i], db[j]), j);
    std::sort(all.begin(), all.end());
    for (std::size_t r = 0; r < k; ++r) {
      if (r < all.size()) {
        REQUIRE(res.distance(i, r) == all[r].first);
        REQUIRE(res.index(i, r) == ids[all[r].second]);
      } else {
        REQUIRE(res.distance(i, r) == std::numeric_limits<std::int32_t>::max());
        REQUIRE(res.index(i, r) == -1);
      }
    }
  }
}

void check_range(const nmhash::binary_index& idx, const ref::bits_t& qb, const ref::bits_t& db,
                 const std::vector<std::int64_t>& ids, int radius, const nmhash::scan_options& opt = {}) {
  const auto r = idx.range_search(ref::pack(qb, idx.bits()), radius, opt);
  REQUIRE(r.lims.size() == qb.size() + 1);
  for (std::size_t i = 0; i < qb.size(); ++i) {
    std::vector<std::int64_t> want_ids;
    std::vector<std::int32_t> want_d;
    for (std::size_t j = 0; j < db.size(); ++j) {
      const int d = ref::distance(qb[i], db[j]);
      if (d < radius) {
        want_ids.push_back(ids[j]);
        want_d.push_back(d);
      }
    }
    REQUIRE(r.count(i) == want_ids.size());
    for (std::size_t m = 0; m < want_ids.size(); ++m) {
      REQUIRE(r.labels[r.lims[i] + m] == want_ids[m]);
      REQUIRE(r.distances[r.lims[i] + m] == want_d[m]);
    }
  }
}

std::vector<std::int64_t> positions(std::size_t n) {
  std::vector<std::int64_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i);
  return v;
}

std::string fixture(const std::string& name) { return std::string(NMHASH_TEST_DATA) + "/faiss/" + name; }

}  // namespace

TEST_CASE("binary_index stores ceil(K/8) bytes per code and searches like brute force", "[index]") {
  std::mt19937_64 g(11);
  for (std::size_t k_bits : {1, 7, 12, 32, 48, 60, 64, 65, 96, 128, 130, 192, 256, 300}) {
    DYNAMIC_SECTION("K = " << k_bits) {
      const auto qb = ref::random_bits(7, k_bits, g), db = ref::random_bits(523, k_bits, g, 0.3);
      nmhash::binary_index idx(k_bits);
      idx.add(ref::pack(db, k_bits));
      REQUIRE(idx.size() == db.size());
      REQUIRE(idx.code_size() == (k_bits + 7) / 8);
      REQUIRE_FALSE(idx.has_ids());
      REQUIRE(idx.reconstruct_all() == ref::pack(db, k_bits));
      for (std::size_t k : {1, 10, 522, 523, 600}) check_search(idx, qb, db, positions(db.size()), k);
      for (int radius : {0, 1, static_cast<int>(k_bits / 3), static_cast<int>(k_bits) + 1})
        check_range(idx, qb, db, positions(db.size()), radius);
    }
  }
}

TEST_CASE("binary_index search splits the database across threads with identical results", "[index]") {
  std::mt19937_64 g(12);
  for (std::size_t k_bits : {48, 64, 100}) {
    // Biased bits: many ties across the parts.
    const auto qb = ref::random_bits(3, k_bits, g), db = ref::random_bits(5000, k_bits, g, 0.05);
    nmhash::binary_index idx(k_bits);
    idx.add(ref::pack(db, k_bits));
    nmhash::scan_options opt;
    opt.threads.count = 4;
    opt.min_part = 700;  // 1 query tile, so 4 parts
    opt.database_block = 333;
    for (std::size_t k : {1, 50, 4999, 5001}) check_search(idx, qb, db, positions(db.size()), k, opt);
    check_range(idx, qb, db, positions(db.size()), 3, opt);
    opt.query_tile = 1;  // 3 tiles over 4 threads
    check_search(idx, qb, db, positions(db.size()), 20, opt);
  }
}

TEST_CASE("binary_index ids: add_with_ids, remove_ids, and the rules of mixing", "[index]") {
  std::mt19937_64 g(13);
  const std::size_t K = 40;
  const auto qb = ref::random_bits(5, K, g), db = ref::random_bits(300, K, g);
  std::vector<std::int64_t> ids(300);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i * 7919 % 1000) - 500;
  ids[17] = ids[3];  // duplicates are kept, and removed together
  nmhash::binary_index idx(K);
  const auto half = [&](std::size_t b, std::size_t e) { return ref::bits_t(db.begin() + b, db.begin() + e); };
  idx.add_with_ids(ref::pack(half(0, 120), K), std::vector<std::int64_t>(ids.begin(), ids.begin() + 120));
  idx.add_with_ids(ref::pack(half(120, 300), K), std::vector<std::int64_t>(ids.begin() + 120, ids.end()));
  REQUIRE(idx.has_ids());
  REQUIRE(idx.id(17) == ids[3]);
  check_search(idx, qb, db, ids, 25);
  check_range(idx, qb, db, ids, 15);

  REQUIRE_THROWS_WITH(idx.add(ref::pack(half(0, 2), K)), Contains("holds ids of its own"));
  REQUIRE_THROWS_WITH(idx.add_with_ids(ref::pack(half(0, 2), K), std::vector<std::int64_t>{1}),
                      Contains("2 codes but 1 ids"));
  REQUIRE_THROWS_WITH(idx.add(ref::pack(ref::random_bits(2, 41, g), 41)), Contains("K = 41 bits but the index holds K = 40"));

  // Remove a duplicated id, a missing id and one more: the rest keep their order.
  const std::vector<std::int64_t> gone = {ids[3], 123456789, ids[250]};
  REQUIRE(idx.remove_ids(gone) == 3);
  ref::bits_t db2;
  std::vector<std::int64_t> ids2;
  for (std::size_t j = 0; j < db.size(); ++j)
    if (ids[j] != ids[3] && ids[j] != ids[250]) {
      db2.push_back(db[j]);
      ids2.push_back(ids[j]);
    }
  REQUIRE(idx.size() == db2.size());
  check_search(idx, qb, db2, ids2, 40);

  // An index numbered by position renumbers the codes behind a removal, as
  // IndexBinaryFlat does.
  nmhash::binary_index seq(K);
  seq.add(ref::pack(db, K));
  REQUIRE_THROWS_WITH(seq.add_with_ids(ref::pack(half(0, 1), K), std::vector<std::int64_t>{5}),
                      Contains("numbers its codes by position"));
  REQUIRE(seq.remove_ids({0, 2, 299, 1000}) == 3);
  ref::bits_t db3(db.begin() + 1, db.end() - 1);
  db3.erase(db3.begin() + 1);
  check_search(seq, qb, db3, positions(db3.size()), 10);
  seq.clear();
  seq.add_with_ids(ref::pack(half(0, 3), K), std::vector<std::int64_t>{9, 8, 7});
  REQUIRE(seq.id(0) == 9);
}

TEST_CASE("binary_index rejects bad arguments with nmhash::error", "[index]") {
  REQUIRE_THROWS_WITH(nmhash::binary_index(0), Contains("code length K = 0"));
  REQUIRE_THROWS_WITH(nmhash::binary_index(nmhash::max_code_bits + 1), Contains("outside [1, 4096]"));
  nmhash::binary_index idx(12);
  const std::uint8_t bad[2] = {0xff, 0x1f};  // bit 12 set
  REQUIRE_THROWS_WITH(idx.add_bytes(bad, 1), Contains("code 0 has bits set at positions >= K = 12"));
  const nmhash::packed_codes q(1, 12);
  REQUIRE_THROWS_WITH(idx.search(q, 0), Contains("k must be at least 1"));
  REQUIRE_THROWS_WITH(idx.search(nmhash::packed_codes(1, 13), 1), Contains("K = 13 bits but the index holds K = 12"));
  // An empty index pads every row.
  const auto r = idx.search(q, 3);
  REQUIRE(r.indices == std::vector<std::int64_t>{-1, -1, -1});
  // An absurd k is an nmhash::error, not std::bad_alloc.
  REQUIRE_THROWS_AS(idx.search(nmhash::packed_codes(4, 12), std::numeric_limits<std::size_t>::max() / 2),
                    nmhash::error);
  // One query: the product fits, the vector's size limit does not.
  REQUIRE_THROWS_AS(idx.search(q, std::size_t{1} << 62), nmhash::error);
  REQUIRE_THROWS_AS(nmhash::hamming_knn(q, nmhash::packed_codes(3, 12), std::size_t{1} << 62), nmhash::error);
  REQUIRE_THROWS_WITH(idx.reconstruct(0, 1), Contains("out of range for 0 codes"));
}

TEST_CASE("index files: save, load and map round-trip, damage is named", "[index][io]") {
  temp_dir dir;
  std::mt19937_64 g(14);
  for (std::size_t k_bits : {12, 64, 130}) {
    const auto db = ref::random_bits(77, k_bits, g), qb = ref::random_bits(4, k_bits, g);
    for (bool with_ids : {false, true}) {
      nmhash::binary_index idx(k_bits);
      std::vector<std::int64_t> ids = positions(db.size());
      if (with_ids) {
        for (auto& x : ids) x = x * 31 - 1000;
        idx.add_with_ids(ref::pack(db, k_bits), ids);
      } else {
        idx.add(ref::pack(db, k_bits));
      }
      const auto path = dir.file("i.nmhi");
      nmhash::io::save_index(idx, path);
      const auto info = nmhash::io::read_index_info(path);
      REQUIRE(info.type == "nmhash");
      REQUIRE(info.bits == k_bits);
      REQUIRE(info.count == db.size());
      REQUIRE(info.has_ids == with_ids);
      for (const auto& back : {nmhash::io::load_index(path), nmhash::io::map_index(path), nmhash::io::open_index(path)}) {
        REQUIRE(back.bits() == k_bits);
        REQUIRE(back.size() == db.size());
        REQUIRE(back.has_ids() == with_ids);
        REQUIRE(std::memcmp(back.codes(), idx.codes(), idx.size() * idx.code_size()) == 0);
        check_search(back, qb, db, ids, 9);
      }
      const auto mapped = nmhash::io::map_index(path);
      REQUIRE(mapped.read_only());
      REQUIRE_THROWS_WITH(nmhash::binary_index(mapped).add(ref::pack(db, k_bits)), Contains("read-only"));
    }
  }

  nmhash::binary_index idx(64);
  idx.add_with_ids(ref::pack(ref::random_bits(10, 64, g), 64), positions(10));
  const auto path = dir.file("good.nmhi");
  nmhash::io::save_index(idx, path);
  const std::string good = read_bytes(path);
  REQUIRE(good.size() == 64 + 10 * 8 + 10 * 8);
  const auto damaged = [&](std::size_t offset, char value) {
    std::string b = good;
    b[offset] = value;
    write_bytes(dir.file("bad.nmhi"), b);
    return dir.file("bad.nmhi");
  };
  REQUIRE_THROWS_WITH(nmhash::io::load_index(damaged(0, 'X')), Contains("neither") || Contains("bad magic"));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(damaged(8, 2)), Contains("format version 2 is not supported"));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(damaged(13, 1)), Contains("header checksum mismatch"));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(damaged(70, 0x55)), Contains("payload checksum mismatch"));
  REQUIRE_THROWS_WITH(nmhash::io::map_index(damaged(150, 0x55)), Contains("payload checksum mismatch"));
  nmhash::io::index_load_options trust;
  trust.verify_checksum = false;
  REQUIRE(nmhash::io::map_index(damaged(150, 0x55), trust).size() == 10);
  write_bytes(dir.file("short.nmhi"), good.substr(0, good.size() - 8));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(dir.file("short.nmhi")),
                      Contains("is 216 bytes but its header says 224 (truncated)"));
  write_bytes(dir.file("tiny.nmhi"), good.substr(0, 30));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(dir.file("tiny.nmhi")), Contains("header is 64 bytes"));
  REQUIRE_THROWS_WITH(nmhash::io::load_index(dir.file("absent.nmhi")), Contains("cannot open"));
}

TEST_CASE("FAISS files written by faiss-cpu: read, search as FAISS, write back byte for byte", "[index][io][faiss]") {
  temp_dir dir;
  for (const std::string name : {"flat48", "idmap64", "idmap2_128"}) {
    DYNAMIC_SECTION(name) {
      const auto path = fixture(name + ".faissindex");
      const auto idx = nmhash::io::open_index(path);
      const auto codes = nmhash::io::read_npy(fixture(name + "_codes.npy"));
      REQUIRE(idx.size() == codes.rows());
      REQUIRE(idx.code_size() == codes.cols());
      REQUIRE(std::memcmp(idx.codes(), codes.bytes.data(), codes.bytes.size()) == 0);
      REQUIRE(idx.has_ids() == (name != "flat48"));
      if (idx.has_ids()) {
        const auto ids = nmhash::io::read_npy(fixture(name + "_ids.npy"));
        REQUIRE(std::memcmp(idx.ids(), ids.bytes.data(), ids.bytes.size()) == 0);
      }
      // FAISS stores bit j in byte j / 8 at position j % 8 (lsb first).
      const auto q = nmhash::io::load_codes_npy(fixture(name + "_queries.npy"), 0, nmhash::bit_order::lsb_first);
      const auto want_d = nmhash::io::read_npy(fixture(name + "_D.npy"));
      const auto want_i = nmhash::io::read_npy(fixture(name + "_I.npy"));
      const auto res = idx.search(q, want_d.cols());
      REQUIRE(std::memcmp(res.distances.data(), want_d.bytes.data(), want_d.bytes.size()) == 0);
      REQUIRE(std::memcmp(res.indices.data(), want_i.bytes.data(), want_i.bytes.size()) == 0);

      nmhash::io::write_faiss_index(idx, dir.file("out.faissindex"));
      std::string original = read_bytes(path);
      if (name == "idmap2_128") original.replace(0, 4, "IBMp");  // written as IndexBinaryIDMap
      REQUIRE(read_bytes(dir.file("out.faissindex")) == original);
      const auto info = nmhash::io::read_index_info(path);
      REQUIRE(info.count == idx.size());
      REQUIRE(info.has_ids == idx.has_ids());
    }
  }
  REQUIRE_THROWS_WITH(nmhash::io::open_index(fixture("hnsw32.faissindex")),
                      Contains("FAISS index type IndexBinaryHNSW (IBHf) is not supported"));
  nmhash::binary_index odd(12);
  REQUIRE_THROWS_WITH(nmhash::io::write_faiss_index(odd, dir.file("x")), Contains("multiple of 8"));

  const std::string flat = read_bytes(fixture("flat48.faissindex"));
  write_bytes(dir.file("cut.faissindex"), flat.substr(0, flat.size() - 5));
  REQUIRE_THROWS_WITH(nmhash::io::open_index(dir.file("cut.faissindex")), Contains("truncated: the codes need"));
  std::string wrong = flat;
  wrong[8] = 5;  // code_size 5 for d = 48
  write_bytes(dir.file("cs.faissindex"), wrong);
  REQUIRE_THROWS_WITH(nmhash::io::open_index(dir.file("cs.faissindex")),
                      Contains("field code_size: expected d / 8 = 6, found 5"));
  write_bytes(dir.file("extra.faissindex"), flat + "xy");
  REQUIRE_THROWS_WITH(nmhash::io::open_index(dir.file("extra.faissindex")), Contains("2 trailing bytes"));
}

TEST_CASE("mih_index returns exactly the flat scan's top-k and range results", "[index][mih]") {
  std::mt19937_64 g(15);
  for (std::size_t k_bits : {8, 16, 33, 48, 64, 100, 128, 256}) {
    for (double p_one : {0.5, 0.1}) {  // uniform codes, and clustered ones with many ties
      DYNAMIC_SECTION("K = " << k_bits << ", p(1) = " << p_one) {
        const auto db = ref::random_bits(900, k_bits, g, p_one), qb = ref::random_bits(6, k_bits, g, p_one);
        nmhash::binary_index idx(k_bits);
        std::vector<std::int64_t> ids(db.size());
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i * 3 + 7);
        idx.add_with_ids(ref::pack(db, k_bits), ids);
        const auto q = ref::pack(qb, k_bits);
        for (std::size_t m : {std::size_t{0}, (k_bits + 31) / 32, std::size_t{3}, std::size_t{5}}) {
          if (m > k_bits || (m > 0 && (k_bits + m - 1) / m > 32)) continue;
          // The tables alone (never the scan), then the default switch to it.
          for (double scan_above : {std::numeric_limits<double>::infinity(), 0.25}) {
            const nmhash::mih_index mih(idx, m, scan_above);
            // The tables alone probe C(bits, r) values per substring and
            // radius: keep their cases to short substrings and small k.
            const bool tables_only = scan_above > 1;
            if (tables_only && mih.substring_bits(0) > 16) continue;
            INFO("substrings " << mih.substrings() << ", scan above " << scan_above);
            for (std::size_t k : {1, 10, 100, 899, 900, 950}) {
              if (tables_only && k > 100 && k_bits > 16) continue;
              const auto want = idx.search(q, k), got = mih.search(q, k, nmhash::threads{2});
              REQUIRE(got.distances == want.distances);
              REQUIRE(got.indices == want.indices);
            }
            for (int radius : {0, 1, 3, static_cast<int>(k_bits / 4), static_cast<int>(k_bits) + 1}) {
              if (tables_only && radius > static_cast<int>(k_bits / 4) && k_bits > 16) continue;
              const auto want = idx.range_search(q, radius), got = mih.range_search(q, radius);
              REQUIRE(got.lims == want.lims);
              REQUIRE(got.labels == want.labels);
              REQUIRE(got.distances == want.distances);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("mih_index on clustered codes with duplicates: every code reached once, ties by position",
          "[index][mih]") {
  // Learned codes cluster: copies of a few centres with a few bits flipped,
  // exact duplicates among them, so a code is reached by several substrings
  // and at several radii, and ties at the k-th distance span buckets.
  std::mt19937_64 g(17);
  // Substrings of at most 16 bits keep the tables-only probes cheap.
  const std::vector<std::pair<std::size_t, std::vector<std::size_t>>> cases = {{24, {2, 4}}, {64, {4, 7}}, {96, {6, 8}}};
  for (const auto& [k_bits, substrings] : cases) {
    DYNAMIC_SECTION("K = " << k_bits) {
      const auto centres = ref::random_bits(12, k_bits, g);
      ref::bits_t db;
      std::bernoulli_distribution flip(0.04);
      std::uniform_int_distribution<std::size_t> pick(0, centres.size() - 1);
      for (std::size_t i = 0; i < 4000; ++i) {
        db.push_back(centres[pick(g)]);
        if (i % 5 != 0)
          for (auto& v : db.back()) v ^= flip(g) ? 1 : 0;
      }
      ref::bits_t qb(centres.begin(), centres.begin() + 4);
      for (std::size_t i = 0; i < 4; ++i) {
        qb.push_back(centres[i + 4]);
        for (auto& v : qb.back()) v ^= flip(g) ? 1 : 0;
      }
      nmhash::binary_index idx(k_bits);
      idx.add(ref::pack(db, k_bits));
      const auto q = ref::pack(qb, k_bits);
      for (std::size_t m : substrings) {
        const nmhash::mih_index mih(idx, m, std::numeric_limits<double>::infinity());
        INFO("substrings " << mih.substrings());
        REQUIRE(mih.memory_bytes() >= mih.substrings() * idx.size() * (8 * ((k_bits + 63) / 64) + 4));
        for (std::size_t k : {1, 100, 1000}) {
          const auto want = idx.search(q, k), got = mih.search(q, k, nmhash::threads{2});
          REQUIRE(got.distances == want.distances);
          REQUIRE(got.indices == want.indices);
        }
        for (int radius : {1, 4, static_cast<int>(k_bits / 10)}) {
          const auto want = idx.range_search(q, radius), got = mih.range_search(q, radius);
          REQUIRE(got.lims == want.lims);
          REQUIRE(got.labels == want.labels);
        }
      }
    }
  }
}

TEST_CASE("mih_index refuses stale tables and impossible substring counts", "[index][mih]") {
  std::mt19937_64 g(16);
  nmhash::binary_index idx(64);
  idx.add(ref::pack(ref::random_bits(50, 64, g), 64));
  const nmhash::mih_index mih(idx);
  REQUIRE(mih.substrings() >= 2);
  idx.add(ref::pack(ref::random_bits(1, 64, g), 64));
  REQUIRE_THROWS_WITH(mih.search(nmhash::packed_codes(1, 64), 3), Contains("rebuild the mih_index"));
  REQUIRE_THROWS_WITH(nmhash::mih_index(idx, 1), Contains("substrings of 64 bits exceed 32"));
  REQUIRE_THROWS_WITH(nmhash::mih_index(idx, 65), Contains("substrings must be in [1, K = 64]"));
  const nmhash::binary_index empty(16);
  const nmhash::mih_index none(empty, 2);
  REQUIRE(none.search(nmhash::packed_codes(1, 16), 2).indices == std::vector<std::int64_t>{-1, -1});
  REQUIRE(none.range_search(nmhash::packed_codes(1, 16), 17).lims == std::vector<std::size_t>{0, 0});
}
