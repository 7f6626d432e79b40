// nmhash_lsh_fmnist: unsupervised codes of Fashion-MNIST pixels on the
// fmnist-dpsh splits, evaluated with the retrieval core at several code
// lengths: random-hyperplane LSH (data-independent) or ITQ (Gong &
// Lazebnik 2011, fitted on the training set T). Reference points for the
// learned codes.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "tool_common.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"
#include "nmhash/hashing/itq.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/nmhash.hpp"

namespace {

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Normalised pixels of the chosen pool images, one row per image.
matrix features(const nmhash::data::image_pool& pool, const std::vector<std::size_t>& idx) {
  const std::size_t dim = pool.rows * pool.cols;
  matrix x(static_cast<Eigen::Index>(idx.size()), static_cast<Eigen::Index>(dim));
  for (std::size_t i = 0; i < idx.size(); ++i)
    for (std::size_t p = 0; p < dim; ++p)
      x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(p)) =
          (static_cast<float>(pool.pixels[idx[i] * dim + p]) / 255.0f - nmhash::data::fmnist_mean) /
          nmhash::data::fmnist_std;
  return x;
}

std::vector<std::int32_t> gather(const std::vector<std::int32_t>& v,
                                 const std::vector<std::size_t>& idx) {
  std::vector<std::int32_t> out(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) out[i] = v[idx[i]];
  return out;
}

}  // namespace

namespace {

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_lsh_fmnist: LSH or ITQ codes of pixels on fmnist-dpsh, MAP at several lengths"};
  std::string data_dir = nmhash::data::default_fashion_mnist_dir, out_dir, method = "lsh";
  std::size_t itq_iterations = 50;
  std::vector<std::size_t> lengths{12, 16, 24, 32, 48, 64};
  std::uint64_t seed = 20190810;
  app.add_option("--data", data_dir, "Fashion-MNIST directory (gzipped IDX files)");
  app.add_option("--bits", lengths, "code lengths to evaluate, each 1 to 4096")->delimiter(',')->check(CLI::Range(1, 4096));
  app.add_option("--method", method, "lsh (random hyperplanes) or itq (PCA + iterative rotation)")
      ->check(CLI::IsMember({"lsh", "itq"}));
  app.add_option("--itq-iterations", itq_iterations, "ITQ rotation iterations (0 or more)")->check(nmhash_tool::integer_range(0, 100000));
  app.add_option("--seed", seed, "seed of the random hyperplanes (ITQ: of the initial rotation)");
  app.add_option("--out", out_dir, "directory for results.json (default results/METHOD)");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (out_dir.empty()) out_dir = "results/" + method;
  try {
    std::size_t max_bits = 0;
    for (std::size_t k : lengths) {
      nmhash::require(k >= 1 && k <= nmhash::max_code_bits, "--bits: length ", k, " outside [1, ",
                      nmhash::max_code_bits, "]");
      max_bits = std::max(max_bits, k);
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto pool = nmhash::data::load_fashion_mnist_pool(data_dir);
    const auto split = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
    std::printf("fmnist-dpsh: %zu queries, %zu database images, seed %llu\n", split.query.size(),
                split.database.size(), static_cast<unsigned long long>(seed));
    const matrix xq = features(pool, split.query), xd = features(pool, split.database);
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    matrix w(xq.cols(), static_cast<Eigen::Index>(max_bits));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = normal(gen);
    const matrix pq = xq * w, pd = xd * w;
    const auto ql = nmhash::labels::single(gather(pool.labels, split.query));
    const auto dl = nmhash::labels::single(gather(pool.labels, split.database));

    nlohmann::json results = nlohmann::json::array();
    std::printf("\n%6s %12s %12s %12s %10s\n", "bits", "MAP (tie)", "MAP (index)", "P@r<=2",
                "eval s");
    const matrix xt = method == "itq" ? features(pool, split.train) : matrix();
    for (std::size_t k : lengths) {
      auto take = [&](const matrix& p) {
        const matrix head = p.leftCols(static_cast<Eigen::Index>(k));
        return nmhash::pack_signs(head.data(), static_cast<std::size_t>(head.rows()), k);
      };
      nmhash::packed_codes cq, cd;
      if (method == "itq") {
        const auto dim = static_cast<std::size_t>(xt.cols());
        const auto m = nmhash::hashing::fit_itq(xt.data(), static_cast<std::size_t>(xt.rows()), dim, k,
                                                itq_iterations, seed);
        cq = m.encode(xq.data(), static_cast<std::size_t>(xq.rows()), dim);
        cd = m.encode(xd.data(), static_cast<std::size_t>(xd.rows()), dim);
      } else {
        cq = take(pq);
        cd = take(pd);
      }
      const auto e0 = std::chrono::steady_clock::now();
      const auto ev = nmhash::evaluate(cq, cd, ql, dl);
      const double es = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
      std::printf("%6zu %12.4f %12.4f %12.4f %10.3f\n", k, ev.map.tie_aware, ev.map.index_order,
                  ev.within_radius.precision, es);
      results.push_back({{"bits", k},
                         {"map_tie_aware", ev.map.tie_aware},
                         {"map_index_order", ev.map.index_order},
                         {"precision_within_radius_2", ev.within_radius.precision},
                         {"recall_within_radius_2", ev.within_radius.recall},
                         {"eval_seconds", es}});
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::filesystem::create_directories(out_dir);
    const nlohmann::json doc = {{"protocol", "fmnist-dpsh"},
                                {"method", method == "itq" ? "ITQ on normalised pixels, fitted on T"
                                                           : "random-hyperplane LSH on normalised pixels"},
                                {"seed", seed},
                                {"queries", split.query.size()},
                                {"database", split.database.size()},
                                {"wall_seconds", total},
                                {"results", results}};
    const std::string text = doc.dump(2) + "\n";
    nmhash::io::atomic_file f(out_dir + "/results.json");
    f.write(text.data(), text.size());
    f.commit();
    std::printf("\nwrote %s/results.json (%.1f s)\n", out_dir.c_str(), total);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_lsh_fmnist: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(false);
  return nmhash_tool::finish("nmhash_lsh_fmnist", run_tool(argc, argv));
}
