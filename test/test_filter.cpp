// Filtered search (nmhash/index/filter.hpp) against brute force: the
// binary index's flat scan (gathered and bitmap paths) and the multi-index,
// with ties across the k-th distance, everything denied, k beyond the
// admitted count, ids of their own (with duplicates) and positions.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "filter_reference.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/mih.hpp"
#include "reference.hpp"

namespace {

struct filter_case {
  const char* name;
  nmhash::search_filter filter;
};

// Filters of every kind over an index of n codes whose ids are `ids`.
std::vector<filter_case> filters_for(const std::vector<std::int64_t>& ids, std::mt19937_64& g) {
  const std::size_t n = ids.size();
  std::vector<filter_case> out;
  std::vector<std::int64_t> few, half, tenth;
  for (std::size_t j = 0; j < n; ++j) {
    if (g() % 100 == 0) few.push_back(ids[j]);
    if (g() % 2 == 0) half.push_back(ids[j]);
    if (g() % 10 == 0) tenth.push_back(ids[j]);
  }
  few.push_back(-5);                          // not in the index: ignored
  few.push_back(std::int64_t{1} << 40);       // neither
  out.push_back({"all", {}});
  out.push_back({"allow 1%", nmhash::search_filter::allow_ids(few)});
  out.push_back({"allow 50%", nmhash::search_filter::allow_ids(half)});
  out.push_back({"allow 3", nmhash::search_filter::allow_ids({ids[1], ids[n / 2], ids[n - 1]})});
  out.push_back({"allow nothing", nmhash::search_filter::allow_ids({})});
  out.push_back({"deny 10%", nmhash::search_filter::deny_ids(tenth)});
  out.push_back({"deny everything", nmhash::search_filter::deny_ids(ids)});
  std::vector<bool> bits(n);
  for (std::size_t j = 0; j < n; ++j) bits[j] = j % 3 != 0;
  out.push_back({"bitmap 2/3", nmhash::search_filter::bitmap(bits)});
  out.push_back({"predicate 1/40", nmhash::search_filter::where([](std::size_t j) { return j % 40 == 7; })});
  auto mixed = nmhash::search_filter::allow_ids(half);
  mixed.deny = tenth;
  mixed.predicate = [](std::size_t j) { return j % 5 != 1; };
  out.push_back({"allow, deny and predicate", mixed});
  return out;
}

void require_knn(const nmhash::knn_result& r, const std::vector<std::int32_t>& d, const std::vector<std::int64_t>& i,
                 const std::string& what) {
  INFO(what);
  REQUIRE(r.distances == d);
  REQUIRE(r.indices == i);
}

void require_range(const nmhash::range_result& r, const std::vector<std::size_t>& lims,
                   const std::vector<std::int32_t>& d, const std::vector<std::int64_t>& i, const std::string& what) {
  INFO(what);
  REQUIRE(r.lims == lims);
  REQUIRE(r.distances == d);
  REQUIRE(r.labels == i);
}

}  // namespace

TEST_CASE("filtered search equals brute force over the admitted codes, flat and multi-index", "[index][filter]") {
  std::mt19937_64 g(33);
  for (const std::size_t K : {5, 16, 64, 100}) {
    for (const bool own_ids : {false, true}) {
      const std::size_t n = 2500;
      const auto db = ref::random_bits(n, K, g, 0.3);  // skewed bits: ties at every distance
      const auto qb = ref::random_bits(6, K, g, 0.3);
      std::vector<std::int64_t> ids(n);
      for (std::size_t j = 0; j < n; ++j)
        ids[j] = own_ids ? static_cast<std::int64_t>(1000 + (j * 7919) % 1777) : static_cast<std::int64_t>(j);
      nmhash::binary_index idx(K);
      if (own_ids)
        idx.add_with_ids(ref::pack(db, K), ids);  // 1777 distinct ids: duplicates share a filter's fate
      else
        idx.add(ref::pack(db, K));
      const nmhash::mih_index mih(idx);
      const nmhash::mih_index mih_flat(idx, 0, 1e-9);  // every query falls back to the flat scan
      const auto q = ref::pack(qb, K);
      nmhash::scan_options split;
      split.threads.count = 2;
      split.min_part = 300;  // a database cut into parts
      split.database_block = 256;
      for (const auto& fc : filters_for(ids, g)) {
        const auto admitted = ref::admitted_by(fc.filter, ids);
        const std::string what = std::string(fc.name) + ", K = " + std::to_string(K) + (own_ids ? ", ids" : ", positions");
        const auto prepared = idx.prepare(fc.filter);
        REQUIRE(prepared.admitted() == static_cast<std::size_t>(std::count(admitted.begin(), admitted.end(), true)));
        for (const std::size_t k : {1, 7, 40, 3000}) {
          std::vector<std::int32_t> d;
          std::vector<std::int64_t> i;
          ref::filtered_knn(qb, db, ids, admitted, k, d, i);
          const std::string wk = what + ", k = " + std::to_string(k);
          require_knn(idx.search(q, k, fc.filter), d, i, wk + ", flat");
          require_knn(idx.search(q, k, prepared, split), d, i, wk + ", flat, prepared, split");
          require_knn(mih.search(q, k, fc.filter), d, i, wk + ", mih");
          require_knn(mih_flat.search(q, k, prepared), d, i, wk + ", mih falling back");
        }
        for (const int radius : {0, 1, static_cast<int>(K / 3), static_cast<int>(K + 1)}) {
          std::vector<std::size_t> lims;
          std::vector<std::int32_t> d;
          std::vector<std::int64_t> i;
          ref::filtered_range(qb, db, ids, admitted, radius, lims, d, i);
          const std::string wr = what + ", radius " + std::to_string(radius);
          require_range(idx.range_search(q, radius, fc.filter), lims, d, i, wr + ", flat");
          require_range(idx.range_search(q, radius, prepared, split), lims, d, i, wr + ", flat, split");
          require_range(mih.range_search(q, radius, prepared), lims, d, i, wr + ", mih");
          require_range(mih_flat.range_search(q, radius, fc.filter), lims, d, i, wr + ", mih falling back");
        }
      }
    }
  }
}

TEST_CASE("filtered search: small filters gather, large ones scan, stale and malformed filters are refused",
          "[index][filter]") {
  std::mt19937_64 g(5);
  const std::size_t n = 6400;
  nmhash::binary_index idx(64);
  idx.add(ref::pack(ref::random_bits(n, 64, g), 64));
  std::vector<std::int64_t> one_percent;
  for (std::int64_t j = 0; j < static_cast<std::int64_t>(n); j += 100) one_percent.push_back(j);
  const auto small = idx.prepare(nmhash::search_filter::allow_ids(one_percent));
  REQUIRE(small.sparse());
  REQUIRE(small.positions().size() == 64);
  const auto large = idx.prepare(nmhash::search_filter::deny_ids(one_percent));
  REQUIRE_FALSE(large.sparse());
  REQUIRE(large.admitted() == n - 64);
  REQUIRE(idx.prepare({}).all());

  REQUIRE_THROWS_WITH(idx.prepare(nmhash::search_filter::bitmap(std::vector<bool>(n - 1, true))),
                      Catch::Contains("bitmap has 6399 entries, the index holds 6400 codes"));
  const auto q = ref::pack(ref::random_bits(2, 64, g), 64);
  idx.add(ref::pack(ref::random_bits(1, 64, g), 64));
  REQUIRE_THROWS_WITH(idx.search(q, 5, small), Catch::Contains("prepare it again"));
  REQUIRE_THROWS_WITH(idx.range_search(q, 5, large), Catch::Contains("prepare it again"));

  // An index with ids: a write drops its id map, so a new filter sees the
  // ids as they are now.
  nmhash::binary_index with_ids(64);
  with_ids.add_with_ids(ref::pack(ref::random_bits(3, 64, g), 64), {10, 20, 30});
  auto only = [](const nmhash::prepared_filter& p, std::size_t position) {
    return p.admitted() == 1 && p.admits(position);
  };
  REQUIRE(only(with_ids.prepare(nmhash::search_filter::allow_ids({20})), 1));
  with_ids.remove_ids({10});
  REQUIRE(only(with_ids.prepare(nmhash::search_filter::allow_ids({20})), 0));
  const nmhash::binary_index copy = with_ids;
  REQUIRE(only(copy.prepare(nmhash::search_filter::allow_ids({30})), 1));
}
