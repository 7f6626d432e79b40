// What every nmhash command-line tool does at its start and end, so that a
// full disk or a closed pipe is reported instead of passing for success.
#pragma once

#include <cerrno>
#include <csignal>
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

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
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

}  // namespace nmhash_tool
