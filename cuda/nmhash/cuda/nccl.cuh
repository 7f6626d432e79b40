// Data parallelism between GPUs over NCCL: a communicator, the gather of a
// batch's rows and a gradient sum whose order of additions is fixed (rank
// 0's part, plus rank 1's, plus rank 2's, ...), so that a run is
// repeatable for a fixed number of ranks whatever algorithm NCCL picks,
// and the sum is the one nmhash::mpi::sum_in_rank_order computes on CPUs.
// Rows and parts follow nmhash::split_begin, as in the CPU half.
//
//   // rank 0 makes the id; the launcher hands it to every rank (MPI_Bcast)
//   ncclUniqueId id = nmhash::gpu::nccl_communicator::unique_id();
//   nmhash::gpu::nccl_communicator comm(id, ranks, rank);   // collective
//   nmhash::gpu::gather_rows(comm, d_local, d_full, rows, width, stream);
//   nmhash::gpu::rank_order_sum<float> sum;
//   sum(comm, d_grads, n, stream);
//
// Every call is collective and enqueued on `stream`: each rank calls it
// with the same rows, width or n. One GPU per rank (NCCL refuses two ranks
// on one device). Failures throw nmhash::nccl_error naming the call; a
// communicator destroyed by an exception is aborted, not waited for. NCCL
// waits for a peer that died; the launcher ends the job (mpirun does when
// a rank dies or calls MPI_Abort). Link nmhash::nccl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>

#include "nmhash/core/parallel.hpp"
#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/device_utils.cuh"

#if defined(NMHASH_SIMT)
#include "nmhash_simt/nccl_shim.hpp"
#else
#include <nccl.h>
#endif

namespace nmhash {

class nccl_error : public error {
 public:
  nccl_error(ncclResult_t code, const std::string& what) : error(what), code_(code) {}
  ncclResult_t code() const { return code_; }

 private:
  ncclResult_t code_;
};

namespace detail {

// Communicators here are blocking (NCCL's default), so anything but
// ncclSuccess, ncclInProgress included, is a failure.
inline void nccl_check(ncclResult_t code, const char* expr, const char* file, int line) {
  if (code != ncclSuccess)
    throw nccl_error(code, concat(file, ":", line, ": ", expr, " failed: ", ncclGetErrorString(code)));
}

}  // namespace detail
}  // namespace nmhash

// Checks an ncclResult_t-returning expression; throws nmhash::nccl_error.
#define NMHASH_NCCL_CHECK(expr) ::nmhash::detail::nccl_check((expr), #expr, __FILE__, __LINE__)

namespace nmhash::gpu {

template <class T>
inline ncclDataType_t nccl_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "nccl_type: float or double");
  return std::is_same_v<T, float> ? ncclFloat32 : ncclFloat64;
}

// One rank's member of an NCCL communicator, on the current CUDA device.
class nccl_communicator {
 public:
  // A new communicator's id, made on one rank and handed to every rank.
  static ncclUniqueId unique_id() {
    ncclUniqueId id;
    NMHASH_NCCL_CHECK(ncclGetUniqueId(&id));
    return id;
  }

  // Joins the communicator `id` as `rank` of `ranks`; collective over the
  // ranks, and blocks until all have joined.
  nccl_communicator(const ncclUniqueId& id, int ranks, int rank) : rank_(rank), size_(ranks) {
    require(ranks >= 1 && rank >= 0 && rank < ranks, "nccl_communicator: rank ", rank, " of ", ranks);
    NMHASH_NCCL_CHECK(ncclCommInitRank(&comm_, ranks, id, rank));
  }
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;
  // Destroyed while an exception unwinds (a peer may be gone, or this rank
  // leaves mid-step), the communicator is aborted: its pending operations
  // are stopped instead of waited for.
  ~nccl_communicator() {
    if (!comm_) return;
    if (std::uncaught_exceptions() > 0)
      ncclCommAbort(comm_);
    else
      ncclCommDestroy(comm_);
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  ncclComm_t get() const { return comm_; }

  // Throws when an operation of this communicator failed asynchronously
  // (a peer lost, a network error).
  void check() const {
    ncclResult_t async = ncclSuccess;
    NMHASH_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    if (async != ncclSuccess && async != ncclInProgress)
      throw nccl_error(async, nmhash::detail::concat("nccl_communicator: rank ", rank_, " of ", size_,
                                             ": an operation failed: ", ncclGetErrorString(async)));
  }

 private:
  int rank_, size_;
  ncclComm_t comm_ = nullptr;
};

namespace detail {

// A group of NCCL calls, ended (and so issued) by the destructor unless
// end() ran; on an exception the group is still closed.
class nccl_group {
 public:
  nccl_group() { NMHASH_NCCL_CHECK(ncclGroupStart()); }
  nccl_group(const nccl_group&) = delete;
  nccl_group& operator=(const nccl_group&) = delete;
  ~nccl_group() {
    if (open_) ncclGroupEnd();
  }
  void end() {
    open_ = false;
    NMHASH_NCCL_CHECK(ncclGroupEnd());
  }

 private:
  bool open_ = true;
};

// Every rank's part [begin(r), begin(r + 1)) of buf (n elements of T,
// parts by split_begin) broadcast from rank r, in place, in one group.
template <class T>
void broadcast_parts(const nccl_communicator& c, T* buf, std::size_t n, std::size_t width, cudaStream_t stream) {
  nccl_group g;
  for (int r = 0; r < c.size(); ++r) {
    const std::size_t lo = split_begin(n, c.size(), r) * width, hi = split_begin(n, c.size(), r + 1) * width;
    if (hi > lo) NMHASH_NCCL_CHECK(ncclBroadcast(buf + lo, buf + lo, hi - lo, nccl_type<T>(), r, c.get(), stream));
  }
  g.end();
}

}  // namespace detail

namespace kernels {

// out[i] = parts[0][i] + parts[1][i] + ... + parts[p - 1][i], added in that
// order (part s at parts + s * n).
template <class T>
__global__ void sum_parts_in_order(const T* __restrict__ parts, int p, std::size_t n, T* __restrict__ out) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    T s = parts[i];
    for (int r = 1; r < p; ++r) s += parts[static_cast<std::size_t>(r) * n + i];
    out[i] = s;
  }
}

}  // namespace kernels

// full (rows x width, device) on every rank from each rank's consecutive
// rows: rank r passes its rows [split_begin(rows, P, r), ...) as local
// (null where it holds none). full must not overlap local.
template <class T>
void gather_rows(const nccl_communicator& c, const T* local, T* full, std::size_t rows, std::size_t width,
                 cudaStream_t stream) {
  const std::size_t lo = split_begin(rows, c.size(), c.rank()), hi = split_begin(rows, c.size(), c.rank() + 1);
  require(hi == lo || local != nullptr, "gpu::gather_rows: rank ", c.rank(), " holds ", hi - lo, " rows and passed none");
  if (hi > lo)
    NMHASH_CUDA_CHECK(cudaMemcpyAsync(full + lo * width, local, (hi - lo) * width * sizeof(T), cudaMemcpyDeviceToDevice,
                                      stream));
  if (c.size() > 1) detail::broadcast_parts(c, full, rows, width, stream);
}

// The element-wise sum over the ranks of a device buffer, in place, on
// every rank. Each rank receives its part (split_begin) of every rank's
// buffer (point-to-point), adds the parts in rank order, and the sums are
// broadcast back: 2 (P - 1) / P of the buffer sent per rank, as a ring
// all-reduce, and every bit the same on every run and every rank.
template <class T>
class rank_order_sum {
 public:
  void operator()(const nccl_communicator& c, T* buf, std::size_t n, cudaStream_t stream) {
    const int P = c.size(), me = c.rank();
    if (P == 1) return;
    const std::size_t lo = split_begin(n, P, me), mine = split_begin(n, P, me + 1) - lo;
    parts_.reserve(mine * static_cast<std::size_t>(P));
    if (mine)
      NMHASH_CUDA_CHECK(cudaMemcpyAsync(parts_.data() + static_cast<std::size_t>(me) * mine, buf + lo,
                                        mine * sizeof(T), cudaMemcpyDeviceToDevice, stream));
    {
      detail::nccl_group g;
      for (int r = 0; r < P; ++r) {
        if (r == me) continue;
        const std::size_t rlo = split_begin(n, P, r), rn = split_begin(n, P, r + 1) - rlo;
        if (rn) NMHASH_NCCL_CHECK(ncclSend(buf + rlo, rn, nccl_type<T>(), r, c.get(), stream));
        if (mine)
          NMHASH_NCCL_CHECK(
              ncclRecv(parts_.data() + static_cast<std::size_t>(r) * mine, mine, nccl_type<T>(), r, c.get(), stream));
      }
      g.end();
    }
    if (mine) {
      const unsigned threads = 256;
      const std::size_t want = (mine + threads - 1) / threads;
      const auto blocks = static_cast<unsigned>(want < 4096 ? want : 4096);
      NMHASH_LAUNCH(kernels::sum_parts_in_order<T>, blocks, threads, 0, stream)(parts_.data(), P, mine, buf + lo);
      check_launch("sum_parts_in_order");
    }
    detail::broadcast_parts(c, buf, n, 1, stream);
  }

 private:
  device_buffer<T> parts_;
};

}  // namespace nmhash::gpu
