// nmhash_search: exact Hamming k-nearest-neighbour search of query codes in
// a database of codes (.npy) or an index file (nmhash's or FAISS's); writes
// the distances and the database ids in the layout FAISS returns. Under
// mpirun (built with MPI) rank 0 reads the inputs and writes the outputs,
// each rank scans a consecutive part of the database, and the outputs are
// those of one process, byte for byte.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/index/mih.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/nmhash.hpp"
#ifdef NMHASH_TOOL_MPI
#include "nmhash/mpi/sharded_index.hpp"
#endif

namespace {

int run_tool(int argc, char** argv, const nmhash_tool::mpi_session& session) {
  CLI::App app{"nmhash_search: exact Hamming top-k search, results sorted by (distance, index)"};
  std::string qf, df, out, order, method = "flat";
  std::string allow_file, deny_file;
  std::size_t k = 0, bits = 0, substrings = 0;
  int threads = 0;
  app.add_option("--query", qf, "query codes .npy (float, int8 +-1 or packed uint8)")->required();
  app.add_option("--db", df,
                 "database: codes .npy (ids are row numbers), or an nmhash or FAISS binary index file "
                 "(IndexBinaryFlat, IndexBinaryIDMap; ids are those stored)")
      ->required();
  app.add_option("--k", k, "neighbours per query, 1 to 4294967295 (beyond the database size a row ends in padding)")
      ->required()
      ->check(nmhash_tool::integer_range(1, UINT32_MAX));
  app.add_option("--out", out, "output prefix: writes PREFIX_D.npy (int32 distances) and PREFIX_I.npy (int64 ids)")
      ->required();
  app.add_option("--threads", threads, "threads, 1 to 1024 (0 or absent: all cores)")->check(nmhash_tool::integer_range(0, 1024));
  app.add_option("--bits", bits, "code length K of packed uint8 codes (0 or absent: 8 x columns)")
      ->check(nmhash_tool::integer_range(0, 65536));
  app.add_option("--method", method,
                 "flat (scan every code) or mih (multi-index hashing: exact, sub-linear on clustered codes; "
                 "same results)")
      ->check(CLI::IsMember({"flat", "mih"}));
  app.add_option("--substrings", substrings, "mih: substrings m, 0 or absent: max(K/32, K/log2(N))")
      ->check(nmhash_tool::integer_range(0, 4096));
  app.add_option("--allow-ids", allow_file,
                 "search only the codes with these ids: .npy of integers, ids as the results give them (ids "
                 "that are not in the database are ignored)");
  app.add_option("--deny-ids", deny_file,
                 "never return the codes with these ids: .npy of integers (ids not in the database are ignored)");
  nmhash_tool::add_bit_order(app, order);
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  const auto bo = nmhash_tool::bit_order_of(order);
  nmhash::packed_codes q;
  nmhash::binary_index idx(1);
  nmhash::search_filter filter;
  auto load = [&] {
    if (!allow_file.empty()) filter.allow = nmhash::io::load_ids_npy(allow_file);
    if (!deny_file.empty()) filter.deny = nmhash::io::load_ids_npy(deny_file);
    q = nmhash::io::load_codes_npy(qf, bits, bo);
    const bool index_file = nmhash::io::detect_index_format(df) != nmhash::io::index_format::unknown;
    if (index_file) {
      idx = nmhash::io::open_index(df);
    } else {
      const auto d = nmhash::io::load_codes_npy(df, bits, bo);
      idx = nmhash::binary_index(d.bits());
      idx.add(d);
    }
    nmhash::require(q.bits() == idx.bits(), "code length mismatch: ", qf, " has K = ", q.bits(), " bits, ", df,
                    " has K = ", idx.bits());
  };
  auto write = [&](const nmhash::knn_result& res) {
    // The pair is committed together: never a new _D.npy beside a stale _I.npy.
    nmhash::io::atomic_group outputs;
    nmhash::io::write_npy(outputs.add(out + "_D.npy"), res.distances.data(), {res.queries, res.k});
    nmhash::io::write_npy(outputs.add(out + "_I.npy"), res.indices.data(), {res.queries, res.k});
    outputs.commit();
  };
#ifdef NMHASH_TOOL_MPI
  if (const nmhash::mpi::communicator* world = session.sharded()) {
    const nmhash::mpi::communicator& c = *world;
    try {
      nmhash::mpi::on_root(c, 0, load);
      const auto sharded = nmhash::mpi::sharded_index::scatter(c, idx);
      const std::size_t items = sharded.size();
      idx = nmhash::binary_index(1);
      nmhash::knn_result res;
      c.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      // The root's filter, broadcast; prepared for each rank's shard.
      const nmhash::prepared_filter local = sharded.prepare(filter, 0);
      if (method == "mih") {
        const nmhash::mih_index mih(sharded.shard(), substrings);
        res = sharded.search_with(q, k, 0, [&](const nmhash::packed_codes& qq, std::size_t kk) {
          return mih.search(qq, kk, local, nmhash::threads{threads});
        });
      } else {
        nmhash::scan_options opt;
        opt.threads.count = threads;
        res = sharded.search_with(q, k, 0,
                                  [&](const nmhash::packed_codes& qq, std::size_t kk) { return sharded.shard().search(qq, kk, local, opt); });
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      nmhash::mpi::on_root(c, 0, [&] { write(res); });
      if (c.rank() == 0)
        std::printf("searched %zu queries x %zu items on %d ranks (method %s), K = %zu bits, k = %zu, threads per "
                    "rank = %d: %.4f s (%.1f queries/s, instruction set %s on rank 0)\n",
                    q.size(), items, c.size(), method.c_str(), q.bits(), k,
                    nmhash::resolve_threads(nmhash::threads{threads}), s,
                    s > 0 ? static_cast<double>(q.size()) / s : 0.0, nmhash::isa_name(nmhash::active_isa()));
    } catch (const std::exception& e) {
      return nmhash_tool::mpi_error(c, "nmhash_search", e);
    }
    return 0;
  }
#endif
  try {
    load();
    const nmhash::prepared_filter prepared = idx.prepare(filter);
    nmhash::knn_result res;
    double s = 0, build_s = 0;
    if (method == "mih") {
      const auto b0 = std::chrono::steady_clock::now();
      const nmhash::mih_index mih(idx, substrings);
      build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
      std::printf("multi-index: %zu substrings, tables built in %.4f s, %.1f MiB\n", mih.substrings(), build_s,
                  static_cast<double>(mih.memory_bytes()) / (1024.0 * 1024.0));
      const auto t0 = std::chrono::steady_clock::now();
      res = mih.search(q, k, prepared, nmhash::threads{threads});
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      nmhash::scan_options opt;
      opt.threads.count = threads;
      const auto t0 = std::chrono::steady_clock::now();
      res = idx.search(q, k, prepared, opt);
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const std::size_t items = idx.size();
    if (!filter.admits_all()) std::printf("filter: %zu of %zu codes admitted\n", prepared.admitted(), items);
    write(res);
    std::printf("searched %zu queries x %zu items, K = %zu bits, k = %zu, threads = %d: %.4f s "
                "(%.1f queries/s, instruction set %s)\n",
                q.size(), items, q.bits(), k, nmhash::resolve_threads(nmhash::threads{threads}), s,
                s > 0 ? static_cast<double>(q.size()) / s : 0.0, nmhash::isa_name(nmhash::active_isa()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_search: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(true);
  const nmhash_tool::mpi_session session(argc, argv);
  return nmhash_tool::finish("nmhash_search", run_tool(argc, argv, session));
}
