// nmhash over MPI: the communicator every distributed nmhash function takes,
// the start and end of MPI in a program, and the error rules.
//
// Errors. A communicator is a duplicate of the one it is made from, with
// MPI_ERRORS_RETURN set on it: an MPI call that fails throws nmhash::error
// naming the call and MPI's message instead of aborting inside MPI. An
// error every rank detects alike (bad input read by the root and announced
// to all, shards that disagree on K) is thrown on every rank as
// collective_error, so that the ranks leave together. An error only one
// rank meets would leave the others waiting in the next collective call:
// a program ends it with abort_job(), as the nmhash tools do, and a rank
// that dies makes mpirun end the job with a message naming it.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"

namespace nmhash::mpi {

// An error thrown on every rank of a communicator with the same message.
class collective_error : public error {
 public:
  explicit collective_error(const std::string& what) : error(what) {}
};

namespace detail {

inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  nmhash::detail::fail("MPI: ", call, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}

inline bool finalized() {
  int f = 0;
  MPI_Finalized(&f);
  return f != 0;
}

template <class T>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<T, std::uint8_t>) return MPI_UINT8_T;
  else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return MPI_UINT16_T;
  else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return MPI_UINT32_T;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
  else if constexpr (std::is_same_v<T, unsigned long long>) return MPI_UNSIGNED_LONG_LONG;
  else if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else static_assert(sizeof(T) == 0, "no MPI datatype for this type");
}

// Elements per MPI call: counts are ints.
inline constexpr std::size_t max_chunk = std::size_t{1} << 30;

}  // namespace detail

// Whether this process was started by an MPI launcher (mpirun or mpiexec of
// Open MPI or MPICH, srun with PMI or PMIx), from the variables they set.
// Programs that also run alone can start MPI only then.
inline bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// Starts MPI (MPI_THREAD_FUNNELED: nmhash's threads never call MPI) unless
// it is running, and finalizes it at scope exit if it started it.
class environment {
 public:
  environment(int& argc, char**& argv) {
    int initialized = 0;
    detail::check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (initialized) return;
    int provided = 0;
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owner_ = true;
  }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;
  ~environment() {
    if (owner_ && !detail::finalized()) MPI_Finalize();
  }

 private:
  bool owner_ = false;
};

class communicator {
 public:
  // A duplicate of `comm` (collective over it) that returns MPI errors.
  explicit communicator(MPI_Comm comm = MPI_COMM_WORLD) {
    MPI_Comm dup = MPI_COMM_NULL;
    detail::check(MPI_Comm_dup(comm, &dup), "MPI_Comm_dup");
    comm_ = std::shared_ptr<MPI_Comm>(new MPI_Comm(dup), [](MPI_Comm* c) {
      if (!detail::finalized()) MPI_Comm_free(c);
      delete c;
    });
    detail::check(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    detail::check(MPI_Comm_rank(dup, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(dup, &size_), "MPI_Comm_size");
  }

  MPI_Comm get() const { return *comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  void barrier() const { detail::check(MPI_Barrier(get()), "MPI_Barrier"); }

  // Broadcasts count elements at p from root, in chunks MPI's int counts take.
  template <class T>
  void broadcast(T* p, std::size_t count, int root) const {
    for (std::size_t off = 0; off < count; off += detail::max_chunk) {
      const auto c = static_cast<int>(std::min(detail::max_chunk, count - off));
      detail::check(MPI_Bcast(p + off, c, detail::datatype<T>(), root, get()), "MPI_Bcast");
    }
  }
  template <class T>
  void broadcast(T& v, int root) const {
    broadcast(&v, 1, root);
  }
  // The root's vector, size included, on every rank.
  template <class T>
  void broadcast(std::vector<T>& v, int root) const {
    std::uint64_t n = v.size();
    broadcast(n, root);
    if (rank_ != root) v.resize(static_cast<std::size_t>(n));
    broadcast(v.data(), v.size(), root);
  }
  void broadcast(std::string& s, int root) const {
    std::vector<char> v(s.begin(), s.end());
    broadcast(v, root);
    s.assign(v.begin(), v.end());
  }

  // Every rank's value, in rank order, on every rank.
  template <class T>
  std::vector<T> all_gather(const T& v) const {
    std::vector<T> out(static_cast<std::size_t>(size_));
    detail::check(MPI_Allgather(&v, 1, detail::datatype<T>(), out.data(), 1, detail::datatype<T>(), get()),
                  "MPI_Allgather");
    return out;
  }

  template <class T>
  T all_reduce(T v, MPI_Op op) const {
    T out{};
    detail::check(MPI_Allreduce(&v, &out, 1, detail::datatype<T>(), op, get()), "MPI_Allreduce");
    return out;
  }

  // Element-wise sum of count elements onto the root (in place there).
  template <class T>
  void reduce_sum(T* p, std::size_t count, int root) const {
    for (std::size_t off = 0; off < count; off += detail::max_chunk) {
      const auto c = static_cast<int>(std::min(detail::max_chunk, count - off));
      if (rank_ == root)
        detail::check(MPI_Reduce(MPI_IN_PLACE, p + off, c, detail::datatype<T>(), MPI_SUM, root, get()), "MPI_Reduce");
      else
        detail::check(MPI_Reduce(p + off, nullptr, c, detail::datatype<T>(), MPI_SUM, root, get()), "MPI_Reduce");
    }
  }

  // Every rank's vector concatenated in rank order on the root; `counts`
  // receives each rank's length there. Other ranks get an empty vector.
  template <class T>
  std::vector<T> gather(const std::vector<T>& local, int root, std::vector<std::size_t>* counts = nullptr) const {
    const std::uint64_t n = local.size();
    std::vector<std::uint64_t> all(rank_ == root ? static_cast<std::size_t>(size_) : 0);
    detail::check(MPI_Gather(&n, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, root, get()), "MPI_Gather");
    std::vector<int> cnt, disp;
    std::vector<T> out;
    std::string problem;
    if (rank_ == root) {
      std::uint64_t total = 0;
      for (std::uint64_t c : all) {
        cnt.push_back(static_cast<int>(std::min<std::uint64_t>(c, INT_MAX)));
        disp.push_back(static_cast<int>(std::min<std::uint64_t>(total, INT_MAX)));
        total += c;
      }
      if (total > static_cast<std::uint64_t>(INT_MAX))
        problem = nmhash::detail::concat("MPI: a gather of ", total, " elements exceeds the ", INT_MAX,
                                         " one MPI_Gatherv takes");
      else
        out.resize(static_cast<std::size_t>(total));
      if (counts) counts->assign(all.begin(), all.end());
    }
    // Agreed before any rank enters MPI_Gatherv.
    int ok = problem.empty() ? 1 : 0;
    broadcast(ok, root);
    if (!ok) {
      broadcast(problem, root);
      throw collective_error(problem);
    }
    detail::check(MPI_Gatherv(local.data(), static_cast<int>(n), detail::datatype<T>(), out.data(), cnt.data(),
                              disp.data(), detail::datatype<T>(), root, get()),
                  "MPI_Gatherv");
    return out;
  }

  // Point-to-point, in chunks: send count elements to dest, or receive them.
  template <class T>
  void send(const T* p, std::size_t count, int dest, int tag) const {
    for (std::size_t off = 0; off < count; off += detail::max_chunk) {
      const auto c = static_cast<int>(std::min(detail::max_chunk, count - off));
      detail::check(MPI_Send(p + off, c, detail::datatype<T>(), dest, tag, get()), "MPI_Send");
    }
  }
  template <class T>
  void receive(T* p, std::size_t count, int source, int tag) const {
    for (std::size_t off = 0; off < count; off += detail::max_chunk) {
      const auto c = static_cast<int>(std::min(detail::max_chunk, count - off));
      detail::check(MPI_Recv(p + off, c, detail::datatype<T>(), source, tag, get(), MPI_STATUS_IGNORE), "MPI_Recv");
    }
  }

 private:
  std::shared_ptr<MPI_Comm> comm_;
  int rank_ = 0, size_ = 1;
};

// Runs f on the root only; if it throws, every rank throws collective_error
// with its message (the root's own exception type is not kept). The way to
// read inputs on one rank without leaving the others waiting.
template <class F>
void on_root(const communicator& comm, int root, F&& f) {
  std::string msg;
  int failed = 0;
  if (comm.rank() == root) {
    try {
      f();
    } catch (const std::exception& e) {
      msg = e.what();
      failed = 1;
    }
  }
  comm.broadcast(failed, root);
  if (!failed) return;
  comm.broadcast(msg, root);
  throw collective_error(msg);
}

// Each rank states a problem (empty: none); when any rank has one, every
// rank throws collective_error with the lowest such rank's message.
inline void agree(const communicator& comm, const std::string& problem) {
  const int mine = problem.empty() ? comm.size() : comm.rank();
  const int first = comm.all_reduce(mine, MPI_MIN);
  if (first == comm.size()) return;
  std::string msg = problem;
  comm.broadcast(msg, first);
  throw collective_error(comm.size() > 1 ? nmhash::detail::concat("rank ", first, ": ", msg) : msg);
}

// Ends every rank of the job after an error met by this rank alone: prints
// "tool: error (rank r of P): message" and calls MPI_Abort, which does not
// return. With one rank there is nobody to wait: it prints and returns 1.
inline int abort_job(const communicator& comm, const char* tool, const std::exception& e) {
  if (comm.size() == 1) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  }
  std::fprintf(stderr, "%s: error (rank %d of %d): %s\n", tool, comm.rank(), comm.size(), e.what());
  std::fflush(stderr);
  MPI_Abort(comm.get(), 1);
  return 1;
}

// Balanced consecutive split: part r of n items over p parts is
// [split_begin(n, p, r), split_begin(n, p, r + 1)).
using nmhash::split_begin;

}  // namespace nmhash::mpi
