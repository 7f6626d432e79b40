// An engine that saves its index, loads it back (copied and memory-mapped)
// and writes FAISS's file, with nmhash::io alone.
#include <cstdio>
#include <random>
#include <string>

#include <nmhash/index/binary_index.hpp>
#include <nmhash/index/index_io.hpp>

#if defined(EIGEN_WORLD_VERSION) || defined(NLOHMANN_JSON_VERSION_MAJOR)
#error "nmhash::io headers pulled in Eigen or nlohmann-json"
#endif

int main() {
  std::mt19937_64 g(9);
  nmhash::packed_codes db(1000, 48);
  for (std::size_t i = 0; i < db.size(); ++i) db.row(i)[0] = g() & ((std::uint64_t{1} << 48) - 1);
  nmhash::binary_index index(48);
  std::vector<std::int64_t> ids(db.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(7 * i + 1);
  index.add_with_ids(db, ids);
  const std::string path = "consumer.nmhidx", faiss = "consumer.faissindex";
  nmhash::io::save_index(index, path);
  nmhash::io::write_faiss_index(index, faiss);
  const auto copied = nmhash::io::open_index(path);
  const auto mapped = nmhash::io::map_index(path);
  const auto from_faiss = nmhash::io::open_index(faiss);
  const auto want = index.search(db, 5);
  for (const auto* other : {&copied, &mapped, &from_faiss}) {
    const auto r = other->search(db, 5);
    if (r.indices != want.indices || r.distances != want.distances) return 1;
  }
  std::printf("index files: %zu codes saved, loaded, mapped and read from FAISS's file\n", copied.size());
  return 0;
}
