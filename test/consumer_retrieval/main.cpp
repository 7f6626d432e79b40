// An engine that holds codes and ranks them, with nmhash::retrieval alone.
#include <cstdio>
#include <random>

#include <nmhash/codes/pack.hpp>
#include <nmhash/index/binary_index.hpp>
#include <nmhash/index/mih.hpp>
#include <nmhash/retrieval/metrics.hpp>
#include <nmhash/retrieval/topk.hpp>

#if defined(EIGEN_WORLD_VERSION) || defined(NLOHMANN_JSON_VERSION_MAJOR) || defined(ZLIB_VERSION)
#error "nmhash::retrieval headers pulled in Eigen, nlohmann-json or zlib"
#endif

int main() {
  std::mt19937_64 g(5);
  nmhash::packed_codes db(5000, 64), q(20, 64);
  for (std::size_t i = 0; i < db.size(); ++i) db.row(i)[0] = g();
  for (std::size_t i = 0; i < q.size(); ++i) q.row(i)[0] = db.row(i * 7)[0] ^ (std::uint64_t{1} << (i % 64));
  nmhash::binary_index index(64);
  std::vector<std::int64_t> ids(db.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(1000 + i);
  index.add_with_ids(db, ids);
  const auto flat = index.search(q, 10);
  const auto mih = nmhash::mih_index(index).search(q, 10);
  // Query i is database code 7 i with one bit flipped.
  for (std::size_t i = 0; i < q.size(); ++i)
    if (flat.index(i, 0) != static_cast<std::int64_t>(1000 + 7 * i) || flat.distance(i, 0) != 1) return 1;
  if (flat.indices != mih.indices || flat.distances != mih.distances) return 2;
  std::vector<std::int32_t> dl(db.size()), ql(q.size());
  for (std::size_t i = 0; i < dl.size(); ++i) dl[i] = static_cast<std::int32_t>(i % 3);
  for (std::size_t i = 0; i < ql.size(); ++i) ql[i] = static_cast<std::int32_t>((7 * i) % 3);
  const auto map = nmhash::mean_average_precision(q, db, nmhash::labels::single(ql), nmhash::labels::single(dl));
  if (!(map.tie_aware > 0.3 && map.tie_aware <= 1.0)) return 3;
  std::printf("retrieval consumer ok (instruction set %s): MAP %.4f\n", nmhash::isa_name(nmhash::active_isa()),
              map.tie_aware);
  return 0;
}
