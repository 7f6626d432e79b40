// nmhash::mpi against one process: run under mpirun -np 1, 2 and 4, every
// rank builds the same whole database, the distributed result (sharded
// search, evaluation, leave-one-bit-out MAP) must equal the one-process
// result on it bit for bit. Every rank runs every test case in the same
// order, and checks use CHECK (never REQUIRE) so that no rank leaves a case
// while others wait in a collective call.
//
// Other modes (for ctest's tool and fault tests):
//   test_mpi --write-fixtures DIR   codes and labels .npy for the tools
//   test_mpi --die-at-rank R        rank R is killed (SIGKILL) inside a search
//   test_mpi --throw-at-rank R      rank R alone meets an error inside a search
//   test_mpi --die-in-training R    rank R is killed inside data-parallel training
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nmhash/index/mih.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/mpi.hpp"
#include "nmhash/mpi/shard_io.hpp"

namespace {

using nmhash::binary_index;
using nmhash::labels;
using nmhash::packed_codes;
namespace mpi = nmhash::mpi;

// Codes with many exact ties: `clusters` centres, each code a centre with
// a few bits flipped.
packed_codes clustered_codes(std::size_t n, std::size_t bits, std::size_t clusters, int flips, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  packed_codes centres(clusters, bits), out(n, bits);
  for (std::size_t c = 0; c < clusters; ++c)
    for (std::size_t j = 0; j < bits; ++j)
      if (g() & 1u) centres.set_bit(c, j, true);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = g() % clusters;
    for (std::size_t j = 0; j < bits; ++j) out.set_bit(i, j, centres.bit(c, j));
    for (int f = 0; f < flips; ++f) {
      const std::size_t j = g() % bits;
      out.set_bit(i, j, !out.bit(i, j));
    }
  }
  return out;
}

labels class_labels(std::size_t n, int classes, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::int32_t> ids(n);
  for (auto& v : ids) v = static_cast<std::int32_t>(g() % static_cast<std::uint64_t>(classes));
  return labels::single(std::move(ids));
}

labels multi_labels(std::size_t n, std::size_t columns, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::uint8_t> m(n * columns, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (int t = 0; t < 2; ++t) m[i * columns + g() % columns] = 1;
  return labels::multi_hot(m.data(), n, columns);
}

// Rank r's shard: items [b, e) under an unequal split when `uneven` (rank 1
// empty between others with 3 ranks or more), else scatter's split.
template <class Whole>
std::pair<std::size_t, std::size_t> part_range(std::size_t n, int P, int r, bool uneven) {
  if (!uneven || P == 1) return {mpi::split_begin(n, P, r), mpi::split_begin(n, P, r + 1)};
  // Rank 0 takes a third, rank 1 none (with 3 ranks or more), the rest
  // share the remainder.
  const std::size_t first = n / 3;
  if (r == 0) return {0, first};
  if (P == 2) return {first, n};
  if (r == 1) return {first, first};
  const std::size_t rest = n - first;
  return {first + mpi::split_begin(rest, P - 2, r - 2), first + mpi::split_begin(rest, P - 2, r - 1)};
}

packed_codes rows(const packed_codes& c, std::size_t b, std::size_t e) {
  packed_codes out(e - b, c.bits());
  if (e > b) std::memcpy(out.data(), c.row(b), (e - b) * c.words_per_code() * sizeof(std::uint64_t));
  return out;
}

labels label_rows(const labels& l, std::size_t b, std::size_t e) {
  std::vector<std::size_t> idx;
  for (std::size_t i = b; i < e; ++i) idx.push_back(i);
  return l.subset(idx);
}

binary_index index_rows(const binary_index& whole, std::size_t b, std::size_t e) {
  binary_index part(whole.bits());
  part.add_bytes(whole.codes() + b * whole.code_size(), e - b, whole.has_ids() ? whole.ids() + b : nullptr);
  return part;
}

bool is_root(const mpi::communicator& c) { return c.rank() == 0; }

}  // namespace

TEST_CASE("sharded top-k and range search equal one index over the same codes", "[mpi]") {
  const mpi::communicator world;
  for (std::size_t bits : {12u, 64u, 100u}) {
    for (bool ids : {false, true}) {
      for (bool uneven : {false, true}) {
        const std::size_t n = 3000;
        const packed_codes db = clustered_codes(n, bits, 40, 2, bits * 7 + 1);
        const packed_codes q = clustered_codes(23, bits, 40, 3, bits * 7 + 1);
        binary_index whole(bits);
        if (ids) {
          std::vector<std::int64_t> id(n);
          std::mt19937_64 g(5);
          for (auto& v : id) v = static_cast<std::int64_t>(g() % 1000000);  // duplicates allowed
          whole.add_with_ids(db, id);
        } else {
          whole.add(db);
        }
        const auto [b, e] = part_range<binary_index>(n, world.size(), world.rank(), uneven);
        const mpi::sharded_index sharded(world, index_rows(whole, b, e));
        CHECK(sharded.size() == n);
        for (std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{100}, n + 7}) {
          INFO("K = " << bits << ", ids " << ids << ", uneven " << uneven << ", k = " << k);
          const nmhash::knn_result got = sharded.search(is_root(world) ? q : packed_codes(0, bits), k);
          if (is_root(world)) {
            const nmhash::knn_result want = whole.search(q, k);
            CHECK(got.queries == want.queries);
            CHECK(got.k == want.k);
            CHECK(got.distances == want.distances);
            CHECK(got.indices == want.indices);
          } else {
            CHECK(got.distances.empty());
          }
        }
        for (int radius : {0, 3, 9}) {
          INFO("K = " << bits << ", ids " << ids << ", uneven " << uneven << ", radius " << radius);
          const nmhash::range_result got = sharded.range_search(q, radius);
          if (is_root(world)) {
            const nmhash::range_result want = whole.range_search(q, radius);
            CHECK(got.lims == want.lims);
            CHECK(got.distances == want.distances);
            CHECK(got.labels == want.labels);
          }
        }
      }
    }
  }
}

TEST_CASE("sharded search with a multi-index per shard equals the flat scan", "[mpi]") {
  const mpi::communicator world;
  const std::size_t bits = 64, n = 4000;
  binary_index whole(bits);
  whole.add(clustered_codes(n, bits, 30, 3, 11));
  const packed_codes q = clustered_codes(17, bits, 30, 4, 11);
  const mpi::sharded_index sharded = mpi::sharded_index::scatter(world, whole);
  const nmhash::mih_index mih(sharded.shard());
  const nmhash::knn_result got =
      sharded.search_with(q, 50, 0, [&](const packed_codes& qq, std::size_t k) { return mih.search(qq, k); });
  if (is_root(world)) {
    const nmhash::knn_result want = whole.search(q, 50);
    CHECK(got.distances == want.distances);
    CHECK(got.indices == want.indices);
  }
}

TEST_CASE("filtered sharded search equals one index's filtered search", "[mpi][filter]") {
  const mpi::communicator world;
  for (std::size_t bits : {10u, 64u}) {
    for (bool ids : {false, true}) {
      const std::size_t n = 2000;
      const packed_codes db = clustered_codes(n, bits, 30, 2, bits + 3);
      const packed_codes q = clustered_codes(9, bits, 30, 3, bits + 3);
      binary_index whole(bits);
      std::vector<std::int64_t> id(n);
      for (std::size_t j = 0; j < n; ++j) id[j] = ids ? static_cast<std::int64_t>(5000 + (j * 13) % 1500) : static_cast<std::int64_t>(j);
      if (ids)
        whole.add_with_ids(db, id);
      else
        whole.add(db);
      const auto [b, e] = part_range<binary_index>(n, world.size(), world.rank(), true);
      const mpi::sharded_index sharded(world, index_rows(whole, b, e));
      std::vector<std::int64_t> few, some;
      for (std::size_t j = 0; j < n; ++j) {
        if (j % 70 == 5) few.push_back(id[j]);
        if (j % 6 == 0) some.push_back(id[j]);
      }
      std::vector<bool> bitmap(n);
      for (std::size_t j = 0; j < n; ++j) bitmap[j] = j % 3 == 1;
      auto mixed = nmhash::search_filter::allow_ids(some);
      mixed.predicate = [](std::size_t j) { return j % 2 == 0; };
      const std::vector<std::pair<const char*, nmhash::search_filter>> filters{
          {"allow few", nmhash::search_filter::allow_ids(few)},
          {"deny some", nmhash::search_filter::deny_ids(some)},
          {"deny everything", nmhash::search_filter::deny_ids(id)},
          {"bitmap", nmhash::search_filter::bitmap(bitmap)},
          {"allow and predicate", mixed}};
      for (const auto& [name, filter] : filters) {
        // Only the root's lists count: other ranks pass empty ones.
        nmhash::search_filter mine = filter;
        if (!is_root(world)) {
          mine.allow = filter.allow ? std::optional<std::vector<std::int64_t>>(std::vector<std::int64_t>{}) : std::nullopt;
          mine.deny.clear();
          mine.positions.clear();
        }
        for (std::size_t k : {std::size_t{1}, std::size_t{25}, n + 1}) {
          INFO(name << ", K = " << bits << ", ids " << ids << ", k = " << k);
          const nmhash::knn_result got = sharded.search(q, k, mine);
          if (is_root(world)) {
            const nmhash::knn_result want = whole.search(q, k, filter);
            CHECK(got.distances == want.distances);
            CHECK(got.indices == want.indices);
          }
        }
        INFO(name << ", K = " << bits << ", ids " << ids << ", range");
        const nmhash::range_result got = sharded.range_search(q, static_cast<int>(bits / 3), mine);
        if (is_root(world)) {
          const nmhash::range_result want = whole.range_search(q, static_cast<int>(bits / 3), filter);
          CHECK(got.lims == want.lims);
          CHECK(got.distances == want.distances);
          CHECK(got.labels == want.labels);
        }
      }
      CHECK_THROWS_AS(sharded.search(q, 3, nmhash::search_filter::bitmap(std::vector<bool>(n + 1, true))),
                      mpi::collective_error);
    }
  }
}

TEST_CASE("shards disagreeing on K or on ids are refused on every rank", "[mpi]") {
  const mpi::communicator world;
  if (world.size() < 2) return;
  // K differs on the last rank.
  const std::size_t bits = world.rank() == world.size() - 1 ? 32 : 64;
  CHECK_THROWS_AS(mpi::sharded_index(world, binary_index(bits)), mpi::collective_error);
  // Positional codes on rank 0, ids elsewhere.
  binary_index shard(16);
  const packed_codes c = clustered_codes(5, 16, 2, 1, 3);
  if (world.rank() == 0) {
    shard.add(c);
  } else {
    shard.add_with_ids(c, std::vector<std::int64_t>{1, 2, 3, 4, 5});
  }
  const mpi::sharded_index mixed(world, std::move(shard));
  CHECK_THROWS_AS(mixed.search(c, 3), mpi::collective_error);
  // Queries of another length, given on the root only.
  const mpi::sharded_index good(world, binary_index(16));
  CHECK_THROWS_AS(good.search(clustered_codes(2, 20, 2, 1, 3), 3), mpi::collective_error);
}

TEST_CASE("shards save and load independently", "[mpi]") {
  const mpi::communicator world;
  std::string dir;
  if (is_root(world)) {
    char tmpl[] = "/tmp/nmhash-mpi-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  world.broadcast(dir, 0);
  binary_index whole(48);
  std::vector<std::int64_t> ids(1000);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(1000000 + 3 * i);
  whole.add_with_ids(clustered_codes(1000, 48, 10, 2, 4), ids);
  const mpi::sharded_index sharded = mpi::sharded_index::scatter(world, whole);
  mpi::save_shards(sharded, dir + "/db");
  CHECK(std::filesystem::exists(mpi::shard_path(dir + "/db", world.rank(), world.size())));
  for (bool map : {false, true}) {
    const mpi::sharded_index back = mpi::load_shards(world, dir + "/db", map);
    CHECK(back.shard().size() == sharded.shard().size());
    const packed_codes q = clustered_codes(9, 48, 10, 3, 4);
    const nmhash::knn_result got = back.search(q, 20);
    if (is_root(world)) {
      const nmhash::knn_result want = whole.search(q, 20);
      CHECK(got.distances == want.distances);
      CHECK(got.indices == want.indices);
    }
  }
  // A missing shard is reported on every rank.
  CHECK_THROWS_AS(mpi::load_shards(world, dir + "/absent"), mpi::collective_error);
  world.barrier();
  if (is_root(world)) std::filesystem::remove_all(dir);
}

namespace {

void check_same(const nmhash::evaluation& got, const nmhash::evaluation& want) {
  CHECK(got.queries == want.queries);
  CHECK(got.database == want.database);
  CHECK(got.map.tie_aware == want.map.tie_aware);
  CHECK(got.map.index_order == want.map.index_order);
  CHECK(got.map_at.size() == want.map_at.size());
  for (std::size_t a = 0; a < std::min(got.map_at.size(), want.map_at.size()); ++a) {
    CHECK(got.map_at[a].tie_aware == want.map_at[a].tie_aware);
    CHECK(got.map_at[a].index_order == want.map_at[a].index_order);
  }
  CHECK(got.precision_at.size() == want.precision_at.size());
  for (std::size_t a = 0; a < std::min(got.precision_at.size(), want.precision_at.size()); ++a) {
    CHECK(got.precision_at[a].tie_aware == want.precision_at[a].tie_aware);
    CHECK(got.precision_at[a].index_order == want.precision_at[a].index_order);
  }
  CHECK(got.pr_curve.size() == want.pr_curve.size());
  for (std::size_t r = 0; r < std::min(got.pr_curve.size(), want.pr_curve.size()); ++r) {
    CHECK(got.pr_curve[r].precision == want.pr_curve[r].precision);
    CHECK(got.pr_curve[r].recall == want.pr_curve[r].recall);
  }
  CHECK(got.within_radius.precision == want.within_radius.precision);
  CHECK(got.within_radius.recall == want.within_radius.recall);
  CHECK(got.ap_tie_aware == want.ap_tie_aware);
  CHECK(got.ap_index_order == want.ap_index_order);
}

}  // namespace

TEST_CASE("distributed evaluation equals one process bit for bit", "[mpi]") {
  const mpi::communicator world;
  for (std::size_t bits : {16u, 64u, 130u}) {
    for (bool multi : {false, true}) {
      for (bool uneven : {false, true}) {
        const std::size_t n = 2500, nq = 70;
        const packed_codes db = clustered_codes(n, bits, 25, 2, bits + 3);
        const packed_codes q = clustered_codes(nq, bits, 25, 3, bits + 3);
        const labels dl = multi ? multi_labels(n, 70, 8) : class_labels(n, 7, 8);
        const labels ql = multi ? multi_labels(nq, 70, 9) : class_labels(nq, 7, 9);
        const auto [b, e] = part_range<packed_codes>(n, world.size(), world.rank(), uneven);
        const packed_codes shard = rows(db, b, e);
        const labels shard_labels = label_rows(dl, b, e);
        for (bool index_order : {true, false}) {
          INFO("K = " << bits << ", multi " << multi << ", uneven " << uneven << ", index order " << index_order);
          nmhash::evaluation_options opt;
          opt.map_at = {1, 10, 500, n};
          opt.radius = 3;
          opt.per_query = true;
          opt.index_order = index_order;
          const nmhash::evaluation want = nmhash::evaluate(q, db, ql, dl, opt);
          // Only the root's queries, labels and options count.
          nmhash::evaluation_options other = opt;
          other.map_at = {2};
          const nmhash::evaluation got =
              is_root(world) ? mpi::evaluate(world, q, shard, ql, shard_labels, opt)
                             : mpi::evaluate(world, packed_codes(0, bits), shard, labels::single({}), shard_labels, other);
          check_same(got, want);  // on every rank
        }
      }
    }
  }
}

TEST_CASE("distributed leave-one-bit-out MAP equals one process bit for bit", "[mpi]") {
  const mpi::communicator world;
  for (std::size_t bits : {24u, 70u}) {
    for (bool uneven : {false, true}) {
      const std::size_t n = 1500, nq = 25;
      const packed_codes db = clustered_codes(n, bits, 20, 2, bits);
      const packed_codes q = clustered_codes(nq, bits, 20, 3, bits);
      const labels dl = class_labels(n, 5, 1), ql = class_labels(nq, 5, 2);
      const auto [b, e] = part_range<packed_codes>(n, world.size(), world.rank(), uneven);
      const packed_codes shard = rows(db, b, e);
      const labels shard_labels = label_rows(dl, b, e);
      for (auto ties : {nmhash::tie_rule::aware, nmhash::tie_rule::index_order}) {
        INFO("K = " << bits << ", uneven " << uneven << ", index order " << (ties == nmhash::tie_rule::index_order));
        const nmhash::loo_map_result want = nmhash::leave_one_bit_out_map(q, db, ql, dl, ties);
        const nmhash::loo_map_result got = mpi::leave_one_bit_out_map(world, q, shard, ql, shard_labels, ties);
        CHECK(got.ties == want.ties);
        CHECK(got.full == want.full);
        CHECK(got.without_bit == want.without_bit);
      }
    }
  }
}

TEST_CASE("scatter and broadcast move codes and labels whole", "[mpi]") {
  const mpi::communicator world;
  const packed_codes c = clustered_codes(101, 70, 5, 2, 1);
  const labels m = multi_labels(101, 130, 2);
  const packed_codes part = mpi::scatter(world, is_root(world) ? c : packed_codes());
  const labels mpart = mpi::scatter(world, is_root(world) ? m : labels());
  const std::size_t b = mpi::split_begin(101, world.size(), world.rank());
  const std::size_t e = mpi::split_begin(101, world.size(), world.rank() + 1);
  CHECK(part.size() == e - b);
  CHECK(mpart.size() == e - b);
  for (std::size_t i = b; i < e && i - b < std::min(part.size(), mpart.size()); ++i) {
    for (std::size_t w = 0; w < c.words_per_code(); ++w) CHECK(part.row(i - b)[w] == c.row(i)[w]);
    for (std::size_t w = 0; w < m.words(); ++w) CHECK(mpart.sets()[(i - b) * m.words() + w] == m.sets()[i * m.words() + w]);
  }
  packed_codes all = is_root(world) ? c : packed_codes();
  mpi::broadcast(world, all);
  CHECK(all.size() == c.size());
  CHECK(std::memcmp(all.data(), c.data(), c.size() * c.words_per_code() * 8) == 0);
}

namespace {

// Codes and labels for the tool tests: DIR/{q,db}_codes.npy (packed,
// K = 40), DIR/{q,db}_labels.npy, DIR/db.nmhidx with ids.
int write_fixtures(const std::string& dir) {
  namespace io = nmhash::io;
  const std::size_t n = 3001, nq = 41, bits = 40;
  const packed_codes db = clustered_codes(n, bits, 30, 2, 77), q = clustered_codes(nq, bits, 30, 3, 77);
  io::save_codes_npy(dir + "/db_codes.npy", db);
  io::save_codes_npy(dir + "/q_codes.npy", q);
  std::vector<std::int32_t> dl(n), ql(nq);
  for (std::size_t i = 0; i < n; ++i) dl[i] = static_cast<std::int32_t>(i % 6);
  for (std::size_t i = 0; i < nq; ++i) ql[i] = static_cast<std::int32_t>(i % 6);
  io::write_npy(dir + "/db_labels.npy", dl.data(), {n});
  io::write_npy(dir + "/q_labels.npy", ql.data(), {nq});
  binary_index idx(bits);
  std::vector<std::int64_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int64_t>(n - i) * 10;
  idx.add_with_ids(db, ids);
  io::save_index(idx, dir + "/db.nmhidx");
  // Filters: positions of the .npy database, stored ids of the index.
  std::vector<std::int64_t> allow, deny;
  for (std::size_t i = 0; i < n; i += 7) allow.push_back(static_cast<std::int64_t>(i));
  for (std::size_t i = 0; i < n; i += 3) deny.push_back(ids[i]);
  io::write_npy(dir + "/allow_positions.npy", allow.data(), {allow.size()});
  io::write_npy(dir + "/deny_ids.npy", deny.data(), {deny.size()});
  return 0;
}

// A search in which rank `victim` dies (SIGKILL) or alone throws after the
// queries are broadcast, while the others wait in the gather.
int fault(const mpi::communicator& world, int victim, bool die) {
  binary_index whole(64);
  whole.add(clustered_codes(20000, 64, 50, 3, 1));
  const mpi::sharded_index sharded = mpi::sharded_index::scatter(world, whole);
  const packed_codes q = clustered_codes(100, 64, 50, 3, 2);
  try {
    sharded.search_with(q, 10, 0, [&](const packed_codes& qq, std::size_t k) {
      if (world.rank() == victim) {
        if (die) std::raise(SIGKILL);
        throw nmhash::error("injected failure in the local search");
      }
      return sharded.shard().search(qq, k);
    });
  } catch (const std::exception& e) {
    return mpi::abort_job(world, "test_mpi", e);
  }
  return 0;
}

}  // namespace

// test_mpi_training.cpp
int training_fault(const mpi::communicator& world, int victim);

int main(int argc, char** argv) {
  mpi::environment env(argc, argv);
  int rc = 0;
  {
    const mpi::communicator world;
    if (argc == 3 && std::strcmp(argv[1], "--write-fixtures") == 0) return write_fixtures(argv[2]);
    if (argc == 3 && (std::strcmp(argv[1], "--die-at-rank") == 0 || std::strcmp(argv[1], "--throw-at-rank") == 0))
      return fault(world, std::atoi(argv[2]), std::strcmp(argv[1], "--die-at-rank") == 0);
    if (argc == 3 && std::strcmp(argv[1], "--die-in-training") == 0) return training_fault(world, std::atoi(argv[2]));
    Catch::Session session;
    rc = session.run(argc, argv);
    rc = world.all_reduce(rc, MPI_MAX);
  }
  return rc;
}
