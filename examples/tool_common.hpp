// What every nmhash command-line tool does at its start and end, so that a
// full disk or a closed pipe is reported instead of passing for success.
#pragma once

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <CLI/CLI.hpp>

#include "nmhash/codes/pack.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/io/read_file.hpp"

#ifdef NMHASH_TOOL_MPI
#include <optional>

#include "nmhash/mpi/comm.hpp"
#endif

namespace nmhash_tool {

#ifdef NMHASH_TOOL_MPI
// MPI for a tool started by mpirun (or srun): MPI starts only when a
// launcher's variables are present, so a tool run alone never starts it.
class mpi_session {
 public:
  mpi_session(int& argc, char**& argv) {
    if (!nmhash::mpi::launched()) return;
    env_.emplace(argc, argv);
    world_.emplace();
  }
  // The world communicator when the job has more than one rank.
  const nmhash::mpi::communicator* sharded() const { return world_ && world_->size() > 1 ? &*world_ : nullptr; }
  int rank() const { return world_ ? world_->rank() : 0; }

 private:
  std::optional<nmhash::mpi::environment> env_;
  std::optional<nmhash::mpi::communicator> world_;  // freed before MPI is finalized
};

// How a tool under mpirun ends after an error: an error every rank met
// alike is printed once (rank 0) and every rank returns 1; an error one
// rank met alone ends the job (mpi::abort_job).
inline int mpi_error(const nmhash::mpi::communicator& c, const char* tool, const std::exception& e) {
  if (dynamic_cast<const nmhash::mpi::collective_error*>(&e) == nullptr) return nmhash::mpi::abort_job(c, tool, e);
  if (c.rank() == 0) std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
  return 1;
}
#else
// Built without MPI: always one process.
struct mpi_session {
  mpi_session(int&, char**&) {}
  int rank() const { return 0; }
};
#endif

// The ranks of a data-parallel tool run (one process: rank 0 of 1). Rank 0
// reads what every rank needs and hands it over; only rank 0 prints (the
// other ranks' standard output goes to /dev/null) and writes.
struct tool_ranks {
  int rank = 0, size = 1;
  // This rank among the ranks of its node (the GPU it takes).
  int local_rank = 0;
#ifdef NMHASH_TOOL_MPI
  const nmhash::mpi::communicator* comm = nullptr;
#endif
  bool root() const { return rank == 0; }

  // Rank 0's value on every rank.
  bool share(bool v) const {
#ifdef NMHASH_TOOL_MPI
    if (comm) {
      int x = v ? 1 : 0;
      comm->broadcast(x, 0);
      return x != 0;
    }
#endif
    return v;
  }
  std::string share(std::string v) const {
#ifdef NMHASH_TOOL_MPI
    if (comm) comm->broadcast(v, 0);
#endif
    return v;
  }
  // Whether `path` exists, as rank 0 sees it.
  bool exists(const std::string& path) const { return share(root() && std::filesystem::exists(path)); }
  // The bytes of `path`, read by rank 0 (an error there is every rank's).
  std::vector<unsigned char> read(const std::string& path) const {
#ifdef NMHASH_TOOL_MPI
    if (comm) {
      std::vector<unsigned char> bytes;
      nmhash::mpi::on_root(*comm, 0, [&] { bytes = nmhash::io::read_file(path); });
      comm->broadcast(bytes, 0);
      return bytes;
    }
#endif
    return nmhash::io::read_file(path);
  }
};

// The ranks of this run: the job's world when started by mpirun with more
// than one rank.
inline tool_ranks ranks_of(const mpi_session& session) {
  tool_ranks rk;
#ifdef NMHASH_TOOL_MPI
  rk.comm = session.sharded();
  if (rk.comm) {
    rk.rank = rk.comm->rank();
    rk.size = rk.comm->size();
    MPI_Comm node = MPI_COMM_NULL;
    nmhash::mpi::detail::check(
        MPI_Comm_split_type(rk.comm->get(), MPI_COMM_TYPE_SHARED, rk.rank, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
    nmhash::mpi::detail::check(MPI_Comm_rank(node, &rk.local_rank), "MPI_Comm_rank");
    MPI_Comm_free(&node);
    if (rk.rank != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
      throw nmhash::error("cannot send rank " + std::to_string(rk.rank) + "'s standard output to /dev/null");
  }
#else
  (void)session;
#endif
  return rk;
}

// A write past a file-size limit (ulimit -f, RLIMIT_FSIZE) then fails with
// EFBIG, which the writers report and clean up after, instead of the
// process being killed by SIGXFSZ with its temporary files left behind.
// With `whole_output` (tools that print one result at the end), standard
// output is buffered in 1 MiB, so that a failing write is met, and its
// errno read, when finish() flushes it; long-running tools print progress
// as they go.
inline void start(bool whole_output) {
  std::signal(SIGXFSZ, SIG_IGN);
  // A closed pipe on standard output (nmhash_eval | head -1) is a failed
  // write that finish() reports (exit 1 with a message), not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
  static char buffer[std::size_t{1} << 20];  // glibc ignores the size without a buffer
  if (whole_output) std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
}

// Flushes standard output and returns `rc`, or 1 with a message on standard
// error when what was printed could not be written (e.g. a full disk).
inline int finish(const char* tool, int rc) {
  // std::cout writes through stdout's buffer: its flush is where a failing
  // write meets its errno.
  errno = 0;
  std::cout.flush();
  const bool cout_ok = !std::cout.fail();
  const int cout_errno = errno;
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0 && !std::ferror(stdout);
  const int e = cout_errno ? cout_errno : errno;
  if (cout_ok && flushed) return rc;
  if (e)
    std::fprintf(stderr, "%s: error: standard output: write failed: %s; the output is lost\n", tool,
                 std::strerror(e));
  else
    std::fprintf(stderr, "%s: error: standard output: a write failed; the output is lost\n", tool);
  return 1;
}

// An option's value must be a decimal integer from lo to hi; anything else
// (a sign, an exponent, an absurd size) is refused with the value and range.
// The machine and build a result was measured on: CPU model and the vector
// extensions it has, compiler, the flags the tool was built with, threads.
// Results built with -march=native differ between CPUs of different
// extensions (docs/reproduction.md, "Reproducibility").
struct machine_info {
  std::string cpu = "unknown CPU", features, compiler, flags;
  int threads = 1;
  std::string str() const {
    return cpu + " (" + features + "), " + compiler + " " + flags + ", " + std::to_string(threads) + " threads";
  }
};

inline machine_info machine() {
  machine_info m;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      m.cpu = line.substr(line.find(':') + 2);
      break;
    }
#if defined(__x86_64__) || defined(__i386__)
  m.features = __builtin_cpu_supports("avx512f")
                   ? (__builtin_cpu_supports("avx512vpopcntdq") ? "AVX-512 with VPOPCNTDQ" : "AVX-512")
                   : __builtin_cpu_supports("avx2") ? "AVX2" : "no AVX2";
#else
  m.features = "not x86";
#endif
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("g++ ") + __VERSION__;
#else
  m.compiler = "unknown compiler";
#endif
#ifdef NMHASH_BUILD_FLAGS
  m.flags = NMHASH_BUILD_FLAGS;
#else
  m.flags = "(build flags not recorded)";
#endif
#ifdef _OPENMP
  m.threads = omp_get_max_threads();
#endif
  return m;
}

inline CLI::Validator integer_range(std::uint64_t lo, std::uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        std::uint64_t x = 0;
        if (!nmhash::parse_u64(v, x) || x < lo || x > hi)
          return "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", found '" + v +
                 "'";
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

// --bit-order: the order of packed uint8 codes in .npy inputs (FAISS's by
// default, design.md "The bit order of packed bytes").
inline CLI::Option* add_bit_order(CLI::App& app, std::string& order) {
  order = "lsb";
  return app
      .add_option("--bit-order", order,
                  "bit order of packed uint8 codes: lsb (default: FAISS's, numpy.packbits(..., bitorder=\"little\")) "
                  "or msb (numpy.packbits' default bitorder=\"big\")")
      ->check(CLI::IsMember({"msb", "lsb"}));
}
inline nmhash::bit_order bit_order_of(const std::string& order) {
  return order == "lsb" ? nmhash::bit_order::lsb_first : nmhash::bit_order::msb_first;
}

// --max-image-pixels: the decode budget of every image this process reads
// (data::set_max_image_pixels), for the tools that decode images.
inline void add_max_image_pixels(CLI::App& app) {
  app.add_option_function<std::uint64_t>(
         "--max-image-pixels", [](const std::uint64_t& v) { nmhash::data::set_max_image_pixels(v); },
         "largest image decoded, in pixels (default 89478485, PIL's MAX_IMAGE_PIXELS); larger images are refused "
         "by name before their pixels are allocated")
      ->check(integer_range(1, std::uint64_t{1} << 40));
}

// The one check of every numeric option of a tool, after parsing and
// before any work (CLI11 would take "010" as octal, "0x10" as hex, "-1" for
// an unsigned option as 2^64 - 1, and "nan" or "inf" for a real): integers
// must be written in decimal without leading zeros and fit their type
// (unsigned ones carry no sign), reals must be finite decimal numbers.
// Throws CLI::ValidationError naming the option, for app.exit().
inline void check_numbers(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) check_numbers(*sub);
  for (const CLI::Option* o : app.get_options()) {
    const std::string type = o->get_type_name();
    const bool real = type.rfind("FLOAT", 0) == 0;
    const bool uint = type.rfind("UINT", 0) == 0;
    const bool sint = type.rfind("INT", 0) == 0;
    if (!real && !uint && !sint) continue;
    for (const std::string& v : o->results()) {
      const auto refuse = [&](const char* expected) {
        throw CLI::ValidationError(o->get_name(), std::string("expected ") + expected + ", found '" + v + "'");
      };
      if (real) {
        // Decimal digits, sign, point and exponent only (no "nan", "inf", hex).
        const bool chars = !v.empty() && v.find_first_not_of("0123456789+-.eE") == std::string::npos;
        char* end = nullptr;
        errno = 0;
        const double x = chars ? std::strtod(v.c_str(), &end) : 0.0;
        if (!chars || end == v.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
          refuse("a finite decimal number");
        continue;
      }
      std::string digits = v;
      const bool negative = !digits.empty() && digits[0] == '-';
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.erase(0, 1);
      std::uint64_t x = 0;
      if ((uint && negative) || !nmhash::parse_u64(digits, x) || (digits.size() > 1 && digits[0] == '0'))
        refuse(uint ? "a decimal integer >= 0" : "a decimal integer");
      if (sint && x > (negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) refuse("an integer of 64 bits");
    }
  }
}

}  // namespace nmhash_tool
