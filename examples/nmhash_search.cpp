// nmhash_search: exact Hamming k-nearest-neighbour search between two code
// files; writes the distances and indices in the layout FAISS returns.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/nmhash.hpp"

namespace {

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_search: exact Hamming top-k search, results sorted by (distance, index)"};
  std::string qf, df, out, order = "msb";
  std::size_t k = 0, bits = 0;
  int threads = 0;
  app.add_option("--query", qf, "query codes .npy (float, int8 +-1 or packed uint8)")->required();
  app.add_option("--db", df, "database codes .npy")->required();
  app.add_option("--k", k, "neighbours per query, 1 to 4294967295 (beyond the database size a row ends in padding)")
      ->required()
      ->check(nmhash_tool::integer_range(1, UINT32_MAX));
  app.add_option("--out", out, "output prefix: writes PREFIX_D.npy (int32) and PREFIX_I.npy (int64)")->required();
  app.add_option("--threads", threads, "threads, 1 to 1024 (0 or absent: all cores)")->check(nmhash_tool::integer_range(0, 1024));
  app.add_option("--bits", bits, "code length K of packed uint8 codes (0 or absent: 8 x columns)")
      ->check(nmhash_tool::integer_range(0, 65536));
  app.add_option("--bit-order", order, "bit order of packed uint8 codes: msb or lsb")
      ->check(CLI::IsMember({"msb", "lsb"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const auto bo = order == "lsb" ? nmhash::bit_order::lsb_first : nmhash::bit_order::msb_first;
    const auto q = nmhash::io::load_codes_npy(qf, bits, bo);
    const auto d = nmhash::io::load_codes_npy(df, bits, bo);
    nmhash::require(q.bits() == d.bits(), "code length mismatch: ", qf, " has K = ", q.bits(),
                    " bits, ", df, " has K = ", d.bits());
    nmhash::knn_options opt;
    opt.threads.count = threads;
    const auto t0 = std::chrono::steady_clock::now();
    const auto res = nmhash::hamming_knn(q, d, k, opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The pair is committed together: never a new _D.npy beside a stale _I.npy.
    nmhash::io::atomic_group outputs;
    nmhash::io::write_npy(outputs.add(out + "_D.npy"), res.distances.data(), {res.queries, res.k});
    nmhash::io::write_npy(outputs.add(out + "_I.npy"), res.indices.data(), {res.queries, res.k});
    outputs.commit();
    std::printf("searched %zu queries x %zu items, K = %zu bits, k = %zu, threads = %d: %.4f s "
                "(%.1f queries/s)\n",
                q.size(), d.size(), q.bits(), k, nmhash::resolve_threads(opt.threads), s,
                s > 0 ? static_cast<double>(q.size()) / s : 0.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_search: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(true);
  return nmhash_tool::finish("nmhash_search", run_tool(argc, argv));
}
