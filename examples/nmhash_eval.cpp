// nmhash_eval: every retrieval metric of query codes against database codes,
// as a table or one JSON object. Under mpirun (built with MPI) rank 0 reads
// the inputs and prints, each rank sweeps a consecutive part of the
// database, and the output is that of one process, byte for byte.
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tool_common.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/nmhash.hpp"
#ifdef NMHASH_TOOL_MPI
#include "nmhash/mpi/distribute.hpp"
#include "nmhash/mpi/metrics.hpp"
#endif

namespace {

nlohmann::json pair_json(const nmhash::tie_pair& p) {
  return {{"tie_aware", p.tie_aware}, {"index_order", p.index_order}};
}

nlohmann::json loo_json(const nmhash::loo_map_result& r) {
  return {{"full", r.full}, {"without_bit", r.without_bit}};
}

void print_table(const nmhash::evaluation& ev, const nmhash::loo_map_result* loo_aw,
                 const nmhash::loo_map_result* loo_io) {
  std::printf("queries %zu, database %zu, K = %zu bits\n\n", ev.queries, ev.database, ev.bits);
  std::printf("%-28s %12s %12s\n", "metric", "tie-aware", "index-order");
  std::printf("%-28s %12.6f %12.6f\n", "MAP", ev.map.tie_aware, ev.map.index_order);
  for (std::size_t a = 0; a < ev.map_at_k.size(); ++a) {
    const std::string name = "MAP@" + std::to_string(ev.map_at_k[a]);
    std::printf("%-28s %12.6f %12.6f\n", name.c_str(), ev.map_at[a].tie_aware,
                ev.map_at[a].index_order);
  }
  for (std::size_t a = 0; a < ev.precision_at_n.size(); ++a) {
    const std::string name = "precision@" + std::to_string(ev.precision_at_n[a]);
    std::printf("%-28s %12.6f %12.6f\n", name.c_str(), ev.precision_at[a].tie_aware,
                ev.precision_at[a].index_order);
  }
  std::printf("\n%-28s %12.6f\n", ("precision within r=" + std::to_string(ev.radius)).c_str(),
              ev.within_radius.precision);
  std::printf("%-28s %12.6f\n", ("recall within r=" + std::to_string(ev.radius)).c_str(),
              ev.within_radius.recall);
  std::printf("\nprecision-recall over Hamming radius\n%8s %12s %12s\n", "radius", "precision",
              "recall");
  for (std::size_t r = 0; r < ev.pr_curve.size(); ++r)
    std::printf("%8zu %12.6f %12.6f\n", r, ev.pr_curve[r].precision, ev.pr_curve[r].recall);
  if (loo_aw && loo_io) {
    std::printf("\nleave-one-bit-out MAP (MAP with bit k deleted)\n%8s %12s %12s\n", "bit",
                "tie-aware", "index-order");
    for (std::size_t k = 0; k < loo_aw->without_bit.size(); ++k)
      std::printf("%8zu %12.6f %12.6f\n", k, loo_aw->without_bit[k], loo_io->without_bit[k]);
  }
}

}  // namespace

namespace {

int report(const nmhash::evaluation& ev, const nmhash::loo_map_result* la, const nmhash::loo_map_result* li,
           bool json);

int run_tool(int argc, char** argv, const nmhash_tool::mpi_session& session) {
  CLI::App app{"nmhash_eval: retrieval metrics of binary codes (MAP, MAP@k, precision@N, "
               "precision/recall within a Hamming radius, leave-one-bit-out MAP)"};
  std::string qc, dc, ql, dl, order;
  std::size_t topk = 0, bits = 0;
  int radius = 2, threads = 0;
  bool loo = false, json = false;
  app.add_option("--query-codes", qc, "query codes .npy: float32/float64 (sign), int8 +-1 or packed uint8")->required();
  app.add_option("--db-codes", dc, "database codes .npy, same forms")->required();
  app.add_option("--query-labels", ql, "query labels .npy: class ids (N) or 0/1 matrix (N, C)")->required();
  app.add_option("--db-labels", dl, "database labels .npy")->required();
  app.add_option("--topk", topk, "also report MAP@k for this k, 1 to the database size (0 or absent: no MAP@k)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--radius", radius, "Hamming radius for precision/recall, 0 to K (default 2)")
      ->check(nmhash_tool::integer_range(0, 65536));
  app.add_option("--bits", bits, "code length K of packed uint8 codes (0 or absent: 8 x columns)")
      ->check(nmhash_tool::integer_range(0, 65536));
  nmhash_tool::add_bit_order(app, order);
  app.add_option("--threads", threads, "threads, 1 to 1024 (0 or absent: all cores)")->check(nmhash_tool::integer_range(0, 1024));
  app.add_flag("--loo", loo, "leave-one-bit-out MAP, both tie conventions");
  app.add_flag("--json", json, "print one JSON object instead of a table");
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return session.rank() == 0 ? app.exit(e) : e.get_exit_code();
  }
  nmhash::packed_codes q, d;
  nmhash::labels qlab, dlab;
  auto load = [&] {
    const auto bo = nmhash_tool::bit_order_of(order);
    q = nmhash::io::load_codes_npy(qc, bits, bo);
    d = nmhash::io::load_codes_npy(dc, bits, bo);
    nmhash::require(q.bits() == d.bits(), "code length mismatch: ", qc, " has K = ", q.bits(),
                    " bits, ", dc, " has K = ", d.bits());
    qlab = nmhash::io::load_labels_npy(ql);
    dlab = nmhash::io::load_labels_npy(dl);
    nmhash::require(qlab.size() == q.size(), ql, ": ", qlab.size(), " labels for ", q.size(),
                    " query codes in ", qc);
    nmhash::require(dlab.size() == d.size(), dl, ": ", dlab.size(), " labels for ", d.size(),
                    " database codes in ", dc);
    nmhash::require(qlab.type() == dlab.type() && qlab.num_labels() == dlab.num_labels(), ql,
                    " and ", dl, " hold different kinds of labels (class ids vs ",
                    "multi-hot, or different numbers of columns)");
    nmhash::require(topk <= d.size(), "--topk ", topk, " exceeds the ", d.size(), " database codes of ", dc);
    nmhash::require(static_cast<std::size_t>(radius) <= q.bits(), "--radius ", radius, " exceeds the code length K = ",
                    q.bits());
  };
  nmhash::evaluation_options opt;
  if (topk) opt.map_at.push_back(topk);
  opt.radius = radius;
  opt.threads.count = threads;
  nmhash::evaluation ev;
  nmhash::loo_map_result la, li;
#ifdef NMHASH_TOOL_MPI
  if (const nmhash::mpi::communicator* world = session.sharded()) {
    const nmhash::mpi::communicator& c = *world;
    try {
      nmhash::mpi::on_root(c, 0, load);
      const nmhash::packed_codes shard = nmhash::mpi::scatter(c, d);
      const nmhash::labels shard_labels = nmhash::mpi::scatter(c, dlab);
      d = nmhash::packed_codes();
      dlab = nmhash::labels();
      ev = nmhash::mpi::evaluate(c, q, shard, qlab, shard_labels, opt);
      if (loo) {
        la = nmhash::mpi::leave_one_bit_out_map(c, q, shard, qlab, shard_labels, nmhash::tie_rule::aware,
                                                opt.threads);
        li = nmhash::mpi::leave_one_bit_out_map(c, q, shard, qlab, shard_labels, nmhash::tie_rule::index_order,
                                                opt.threads);
      }
    } catch (const std::exception& e) {
      return nmhash_tool::mpi_error(c, "nmhash_eval", e);
    }
    if (c.rank() != 0) return 0;
    return report(ev, loo ? &la : nullptr, loo ? &li : nullptr, json);
  }
#endif
  try {
    load();
    ev = nmhash::evaluate(q, d, qlab, dlab, opt);
    if (loo) {
      la = nmhash::leave_one_bit_out_map(q, d, qlab, dlab, nmhash::tie_rule::aware, opt.threads);
      li = nmhash::leave_one_bit_out_map(q, d, qlab, dlab, nmhash::tie_rule::index_order, opt.threads);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_eval: error: %s\n", e.what());
    return 1;
  }
  return report(ev, loo ? &la : nullptr, loo ? &li : nullptr, json);
}

int report(const nmhash::evaluation& ev, const nmhash::loo_map_result* la, const nmhash::loo_map_result* li,
           bool json) {
  const bool loo = la != nullptr;
  try {
    if (json) {
      nlohmann::json j;
      j["queries"] = ev.queries;
      j["database"] = ev.database;
      j["bits"] = ev.bits;
      j["map"] = pair_json(ev.map);
      j["map_at"] = nlohmann::json::array();
      for (std::size_t a = 0; a < ev.map_at_k.size(); ++a) {
        auto e = pair_json(ev.map_at[a]);
        e["k"] = ev.map_at_k[a];
        j["map_at"].push_back(e);
      }
      j["precision_at"] = nlohmann::json::array();
      for (std::size_t a = 0; a < ev.precision_at_n.size(); ++a) {
        auto e = pair_json(ev.precision_at[a]);
        e["n"] = ev.precision_at_n[a];
        j["precision_at"].push_back(e);
      }
      j["radius"] = ev.radius;
      j["precision_within_radius"] = ev.within_radius.precision;
      j["recall_within_radius"] = ev.within_radius.recall;
      j["pr_curve"] = nlohmann::json::array();
      for (std::size_t r = 0; r < ev.pr_curve.size(); ++r)
        j["pr_curve"].push_back({{"radius", r},
                                 {"precision", ev.pr_curve[r].precision},
                                 {"recall", ev.pr_curve[r].recall}});
      if (loo) j["loo_map"] = {{"tie_aware", loo_json(*la)}, {"index_order", loo_json(*li)}};
      std::cout << j.dump(2) << "\n";
    } else {
      print_table(ev, la, li);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_eval: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(true);
  const nmhash_tool::mpi_session session(argc, argv);
  return nmhash_tool::finish("nmhash_eval", run_tool(argc, argv, session));
}
