// Test-only NCCL for the SIMT execution layer: the calls nmhash's
// data-parallel collectives make (nmhash/cuda/nccl.cuh), with the ranks as
// OS threads of one process and "device" memory the host memory of the
// SIMT layer. Messages are copied when sent, so grouped sends and receives
// never wait for each other; a receive or a non-root broadcast waits for
// its sender. Matching follows NCCL's rules: the k-th send from a to b
// meets the k-th receive on b from a; the k-th broadcast rooted at r on
// one rank meets the k-th rooted at r on every other.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
} ncclResult_t;
typedef enum { ncclFloat32 = 7, ncclFloat64 = 9 } ncclDataType_t;
typedef struct {
  char internal[128];
} ncclUniqueId;

namespace nmhash::simt::nccl {

// One communicator: its ranks' mailboxes.
struct world {
  explicit world(int n) : ranks(n) {}
  int ranks;
  int joined = 0;
  std::mutex m;
  std::condition_variable cv;
  // (from, to, sequence) -> bytes; (root, sequence) -> bytes and readers.
  std::map<std::tuple<int, int, std::size_t>, std::vector<unsigned char>> p2p;
  std::map<std::pair<int, std::size_t>, std::pair<std::vector<unsigned char>, int>> bcast;
};

inline std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
inline std::map<std::uint64_t, std::shared_ptr<world>>& registry() {
  static std::map<std::uint64_t, std::shared_ptr<world>> r;
  return r;
}

inline std::size_t type_size(ncclDataType_t t) { return t == ncclFloat64 ? 8 : 4; }

struct op {
  enum kind { send, recv, broadcast } k;
  const void* src;
  void* dst;
  std::size_t bytes;
  int peer;  // send / recv: the other rank; broadcast: the root
};

}  // namespace nmhash::simt::nccl

struct ncclComm {
  std::shared_ptr<nmhash::simt::nccl::world> w;
  int rank = 0;
  std::map<std::pair<int, int>, std::size_t> sent, received;  // (from, to) -> count
  std::map<int, std::size_t> broadcasts;                       // root -> count
};
typedef ncclComm* ncclComm_t;

namespace nmhash::simt::nccl {

inline int& group_depth() {
  static thread_local int d = 0;
  return d;
}
inline std::vector<std::pair<ncclComm_t, op>>& pending() {
  static thread_local std::vector<std::pair<ncclComm_t, op>> p;
  return p;
}

inline void post(ncclComm_t c, const op& o) {
  world& w = *c->w;
  std::lock_guard<std::mutex> lock(w.m);
  const auto* s = static_cast<const unsigned char*>(o.src);
  if (o.k == op::send) {
    w.p2p[{c->rank, o.peer, c->sent[{c->rank, o.peer}]++}] = std::vector<unsigned char>(s, s + o.bytes);
  } else {  // the root of a broadcast
    const std::size_t seq = c->broadcasts[o.peer]++;
    w.bcast[{o.peer, seq}] = {std::vector<unsigned char>(s, s + o.bytes), w.ranks - 1};
    if (o.dst != o.src) std::memmove(o.dst, o.src, o.bytes);
  }
  w.cv.notify_all();
}

inline ncclResult_t take(ncclComm_t c, const op& o) {
  world& w = *c->w;
  std::unique_lock<std::mutex> lock(w.m);
  if (o.k == op::recv) {
    const auto key = std::make_tuple(o.peer, c->rank, c->received[{o.peer, c->rank}]++);
    w.cv.wait(lock, [&] { return w.p2p.count(key) > 0; });
    auto it = w.p2p.find(key);
    if (it->second.size() != o.bytes) return ncclInvalidUsage;
    std::memcpy(o.dst, it->second.data(), o.bytes);
    w.p2p.erase(it);
  } else {
    const auto key = std::make_pair(o.peer, c->broadcasts[o.peer]++);
    w.cv.wait(lock, [&] { return w.bcast.count(key) > 0; });
    auto it = w.bcast.find(key);
    if (it->second.first.size() != o.bytes) return ncclInvalidUsage;
    std::memcpy(o.dst, it->second.first.data(), o.bytes);
    if (--it->second.second == 0) w.bcast.erase(it);
  }
  return ncclSuccess;
}

// Sends and broadcast roots first, then the receives: a group never waits
// on itself.
inline ncclResult_t run(std::vector<std::pair<ncclComm_t, op>> ops) {
  for (auto& [c, o] : ops)
    if (o.k == op::send || (o.k == op::broadcast && o.peer == c->rank)) post(c, o);
  for (auto& [c, o] : ops)
    if (o.k == op::recv || (o.k == op::broadcast && o.peer != c->rank))
      if (const ncclResult_t r = take(c, o); r != ncclSuccess) return r;
  return ncclSuccess;
}

inline ncclResult_t enqueue(ncclComm_t c, const op& o) {
  if (!c || o.peer < 0 || o.peer >= c->w->ranks) return ncclInvalidArgument;
  if (group_depth() > 0) {
    pending().emplace_back(c, o);
    return ncclSuccess;
  }
  return run({{c, o}});
}

}  // namespace nmhash::simt::nccl

inline const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    default: return "unhandled error";
  }
}

inline ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  static std::uint64_t next = 1;
  std::lock_guard<std::mutex> lock(nmhash::simt::nccl::registry_mutex());
  std::memset(id->internal, 0, sizeof id->internal);
  const std::uint64_t v = next++;
  std::memcpy(id->internal, &v, sizeof v);
  return ncclSuccess;
}

// Blocks until all `nranks` ranks have joined, as NCCL does.
inline ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  namespace n = nmhash::simt::nccl;
  if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  std::uint64_t key;
  std::memcpy(&key, id.internal, sizeof key);
  std::shared_ptr<n::world> w;
  {
    std::lock_guard<std::mutex> lock(n::registry_mutex());
    auto& slot = n::registry()[key];
    if (!slot) slot = std::make_shared<n::world>(nranks);
    w = slot;
  }
  if (w->ranks != nranks) return ncclInvalidUsage;
  {
    std::unique_lock<std::mutex> lock(w->m);
    ++w->joined;
    w->cv.notify_all();
    w->cv.wait(lock, [&] { return w->joined >= w->ranks; });
  }
  auto* c = new ncclComm;
  c->w = std::move(w);
  c->rank = rank;
  *comm = c;
  return ncclSuccess;
}

inline ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}

inline ncclResult_t ncclCommAbort(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}

inline ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* r) {
  *r = ncclSuccess;
  return ncclSuccess;
}

inline ncclResult_t ncclGroupStart() {
  ++nmhash::simt::nccl::group_depth();
  return ncclSuccess;
}

inline ncclResult_t ncclGroupEnd() {
  namespace n = nmhash::simt::nccl;
  if (n::group_depth() == 0) return ncclInvalidUsage;
  if (--n::group_depth() > 0) return ncclSuccess;
  return n::run(std::exchange(n::pending(), {}));
}

inline ncclResult_t ncclSend(const void* buf, std::size_t count, ncclDataType_t t, int peer, ncclComm_t comm,
                             cudaStream_t) {
  using nmhash::simt::nccl::op;
  return nmhash::simt::nccl::enqueue(comm, op{op::send, buf, nullptr, count * nmhash::simt::nccl::type_size(t), peer});
}

inline ncclResult_t ncclRecv(void* buf, std::size_t count, ncclDataType_t t, int peer, ncclComm_t comm,
                             cudaStream_t) {
  using nmhash::simt::nccl::op;
  return nmhash::simt::nccl::enqueue(comm, op{op::recv, nullptr, buf, count * nmhash::simt::nccl::type_size(t), peer});
}

inline ncclResult_t ncclBroadcast(const void* send, void* recv, std::size_t count, ncclDataType_t t, int root,
                                  ncclComm_t comm, cudaStream_t) {
  using nmhash::simt::nccl::op;
  return nmhash::simt::nccl::enqueue(comm, op{op::broadcast, send, recv, count * nmhash::simt::nccl::type_size(t), root});
}
