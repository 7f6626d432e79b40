// nmhash::gpu::binary_index: the GPU twin of nmhash::binary_index
// (include/nmhash/index/binary_index.hpp), with the same names, methods
// and results. The codes stay on the device, ceil(K / 8) bytes each, back
// to back (the CPU index's and FAISS's layout, so moving an index between
// the two is one copy); a search uploads only its queries. Ids, when the
// index holds ids of its own, live in host memory beside it (they only
// translate the results).
//
//   nmhash::gpu::binary_index dev(cpu_index);          // or (bits), then add()
//   nmhash::knn_result top = dev.search(queries, 100);  // what cpu_index.search gives
//   nmhash::range_result near = dev.range_search(queries, 5);
//
// Searches: top-k sorted by (distance, position) with FAISS's padding
// (distance INT32_MAX, id -1) past size(); range search strict (distance <
// radius) in position order; indices and labels hold the ids. Both are
// exactly the CPU index's results.
//
// Threads and streams. As the CPU index: const members may run at once
// from several threads, while no thread is inside a non-const member (add,
// add_with_ids, add_bytes, remove_ids, reserve, clear). Every call runs on
// the index's stream and returns when its results are in host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/device_utils.cuh"
#include "nmhash/cuda/hamming_topk.cuh"
#include "nmhash/index/binary_index.hpp"

namespace nmhash::gpu {

namespace kernels {

// Query blockIdx.x's number of codes at distance < radius, into count.
template <int W, class Codes>
__global__ void hamming_range_count(const std::uint64_t* __restrict__ queries, Codes db, std::size_t n,
                                    unsigned words, unsigned radius, unsigned* __restrict__ count) {
  __shared__ unsigned s_count;
  if (threadIdx.x == 0) s_count = 0;
  __syncthreads();
  const std::uint64_t* q = queries + static_cast<std::size_t>(blockIdx.x) * words;
  unsigned mine = 0;
  for (std::size_t j = threadIdx.x; j < n; j += blockDim.x) mine += code_distance<W>(db, q, j) < radius ? 1u : 0u;
  if (mine) atomicAdd(&s_count, mine);
  __syncthreads();
  if (threadIdx.x == 0) count[blockIdx.x] = s_count;
}

// Query blockIdx.x's codes at distance < radius, in position order, from
// offset[blockIdx.x] of out_pos / out_dist: each step of blockDim.x codes
// places its hits by warp ballots and the warps' counts in order.
template <int W, class Codes>
__global__ void hamming_range_collect(const std::uint64_t* __restrict__ queries, Codes db, std::size_t n,
                                      unsigned words, unsigned radius, const std::size_t* __restrict__ offset,
                                      std::int64_t* __restrict__ out_pos, std::int32_t* __restrict__ out_dist) {
  __shared__ unsigned s_warp[32];
  const std::uint64_t* q = queries + static_cast<std::size_t>(blockIdx.x) * words;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = blockDim.x / 32;
  std::size_t base = offset[blockIdx.x];
  for (std::size_t c0 = 0; c0 < n; c0 += blockDim.x) {
    const std::size_t j = c0 + tid;
    const unsigned d = j < n ? code_distance<W>(db, q, j) : radius;
    const bool keep = d < radius;
    const unsigned ballot = __ballot_sync(0xFFFFFFFFu, keep);
    if (lane == 0) s_warp[warp] = static_cast<unsigned>(__popc(ballot));
    __syncthreads();
    unsigned before = 0, total = 0;
    for (unsigned w = 0; w < warps; ++w) {
      if (w < warp) before += s_warp[w];
      total += s_warp[w];
    }
    if (keep) {
      const std::size_t at = base + before + static_cast<unsigned>(__popc(ballot & lanemask_lt()));
      out_pos[at] = static_cast<std::int64_t>(j);
      out_dist[at] = static_cast<std::int32_t>(d);
    }
    base += total;
    __syncthreads();
  }
}

// dst[i] = code keep[i] of src (bytes each).
template <int Unused = 0>
__global__ void gather_codes(const unsigned char* __restrict__ src, const std::uint64_t* __restrict__ keep,
                             std::size_t n, unsigned bytes, unsigned char* __restrict__ dst) {
  const std::size_t total = n * bytes;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = i / bytes, b = i % bytes;
    dst[i] = src[keep[r] * bytes + b];
  }
}

}  // namespace kernels

inline constexpr unsigned range_block_threads = 256;

namespace detail {

template <int G, class F>
void with_byte_rows(const unsigned char* p, unsigned bytes, F&& f) {
  f(kernels::byte_rows<G>{p, bytes});
}

// f(byte_rows<G>) with the widest aligned load G for `bytes`.
template <class F>
void dispatch_byte_rows(const unsigned char* p, unsigned bytes, F&& f) {
  if (bytes % 8 == 0)
    with_byte_rows<8>(p, bytes, f);
  else if (bytes % 4 == 0)
    with_byte_rows<4>(p, bytes, f);
  else if (bytes % 2 == 0)
    with_byte_rows<2>(p, bytes, f);
  else
    with_byte_rows<1>(p, bytes, f);
}

inline unsigned grid_for(std::size_t items, unsigned threads) {
  const std::size_t want = (items + threads - 1) / threads;
  return static_cast<unsigned>(want < 4096 ? (want ? want : 1) : 4096);
}

}  // namespace detail

class binary_index {
 public:
  // An empty index of K-bit codes, 1 <= K <= max_code_bits, working on
  // `stream`.
  explicit binary_index(std::size_t bits, cudaStream_t stream = nullptr)
      : bits_(bits), cs_((bits + 7) / 8), stream_(stream) {
    require(bits >= 1 && bits <= max_code_bits, "gpu::binary_index: code length K = ", bits, " is outside [1, ",
            max_code_bits, "]");
  }
  // The CPU index's codes and ids, uploaded.
  explicit binary_index(const nmhash::binary_index& host, cudaStream_t stream = nullptr)
      : binary_index(host.bits(), stream) {
    add_bytes(host.codes(), host.size(), host.ids());
  }

  std::size_t bits() const { return bits_; }
  // Bytes per stored code: ceil(K / 8).
  std::size_t code_size() const { return cs_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  bool has_ids() const { return explicit_ids_; }
  // size() * code_size() bytes on the device.
  const unsigned char* device_codes() const { return codes_.data(); }
  // size() ids (host memory), or null when codes are numbered by position.
  const std::int64_t* ids() const { return explicit_ids_ ? ids_.data() : nullptr; }
  std::int64_t id(std::size_t position) const {
    require(position < n_, "gpu::binary_index: position ", position, " is out of range for ", n_, " codes");
    return explicit_ids_ ? ids_[position] : static_cast<std::int64_t>(position);
  }

  // Appends codes numbered by position (size() onwards).
  void add(const packed_codes& codes) {
    check_bits(codes, "add");
    id_positions_.reset();
    nmhash::detail::check_id_kind(explicit_ids_, empty(), false, "gpu::binary_index::add", "use add_with_ids");
    explicit_ids_ = false;
    append(codes);
  }

  // Appends codes with the given ids (ids.size() == codes.size()).
  void add_with_ids(const packed_codes& codes, const std::vector<std::int64_t>& ids) {
    add_with_ids(codes, ids.data(), ids.size());
  }
  void add_with_ids(const packed_codes& codes, const std::int64_t* ids, std::size_t count) {
    check_bits(codes, "add_with_ids");
    id_positions_.reset();
    require(count == codes.size(), "gpu::binary_index::add_with_ids: ", codes.size(), " codes but ", count, " ids");
    nmhash::detail::check_id_kind(explicit_ids_, empty(), true, "gpu::binary_index::add_with_ids", "");
    append(codes);
    explicit_ids_ = true;
    ids_.insert(ids_.end(), ids, ids + count);
  }

  // Appends n codes already in the byte layout (host memory, code_size()
  // bytes each, bits >= K zero), with ids when `ids` is not null.
  void add_bytes(const std::uint8_t* bytes, std::size_t n, const std::int64_t* ids = nullptr) {
    id_positions_.reset();
    const std::size_t total = checked_mul(n, cs_, "gpu::binary_index::add_bytes: codes x code size");
    nmhash::detail::check_code_padding(bytes, n, bits_, "gpu::binary_index::add_bytes");
    nmhash::detail::check_id_kind(explicit_ids_, empty(), ids != nullptr, "gpu::binary_index::add_bytes", "pass them");
    grow(n_ + n);
    if (total)
      NMHASH_CUDA_CHECK(cudaMemcpyAsync(codes_.data() + n_ * cs_, bytes, total, cudaMemcpyHostToDevice, stream_));
    sync();
    n_ += n;
    explicit_ids_ = ids != nullptr;
    if (ids) ids_.insert(ids_.end(), ids, ids + n);
  }

  // Removes every code whose id is listed; returns how many were removed.
  // The remaining codes keep their order (compacted on the device).
  std::size_t remove_ids(const std::vector<std::int64_t>& ids) {
    id_positions_.reset();
    const std::unordered_set<std::int64_t> drop(ids.begin(), ids.end());
    std::vector<std::uint64_t> keep;
    keep.reserve(n_);
    for (std::size_t j = 0; j < n_; ++j)
      if (!drop.count(explicit_ids_ ? ids_[j] : static_cast<std::int64_t>(j))) keep.push_back(j);
    const std::size_t removed = n_ - keep.size();
    if (removed == 0) return 0;
    device_buffer<unsigned char> next(capacity_ * cs_);
    if (!keep.empty()) {
      device_buffer<std::uint64_t> dkeep(keep.data(), keep.size());
      const std::size_t total = keep.size() * cs_;
      NMHASH_LAUNCH(kernels::gather_codes<0>, detail::grid_for(total, 256), 256, 0, stream_)(
          codes_.data(), dkeep.data(), keep.size(), static_cast<unsigned>(cs_), next.data());
      check_launch("gather_codes");
      sync();
    }
    codes_ = std::move(next);
    if (explicit_ids_) {
      for (std::size_t i = 0; i < keep.size(); ++i) ids_[i] = ids_[keep[i]];
      ids_.resize(keep.size());
    }
    n_ = keep.size();
    return removed;
  }

  // Room for n codes without reallocating.
  void reserve(std::size_t n) {
    if (n > capacity_) reallocate(n);
    if (explicit_ids_) ids_.reserve(n);
  }

  // Removes every code; the index may then take either kind of add again.
  void clear() {
    id_positions_.reset();
    n_ = 0;
    ids_.clear();
    explicit_ids_ = false;
  }

  // Codes [begin, begin + n) as packed codes.
  packed_codes reconstruct(std::size_t begin, std::size_t n) const {
    require(begin <= n_ && n <= n_ - begin, "gpu::binary_index::reconstruct: codes [", begin, ", ", begin, " + ", n,
            ") are out of range for ", n_, " codes");
    std::vector<std::uint8_t> bytes(n * cs_);
    if (n)
      NMHASH_CUDA_CHECK(cudaMemcpyAsync(bytes.data(), codes_.data() + begin * cs_, bytes.size(),
                                        cudaMemcpyDeviceToHost, stream_));
    sync();
    packed_codes out(n, bits_);
    for (std::size_t i = 0; i < n; ++i) std::memcpy(out.row(i), bytes.data() + i * cs_, cs_);
    return out;
  }
  packed_codes reconstruct_all() const { return reconstruct(0, n_); }

  // A CPU index with the same codes and ids.
  nmhash::binary_index to_host() const {
    nmhash::binary_index h(bits_);
    const packed_codes c = reconstruct_all();
    if (explicit_ids_)
      h.add_with_ids(c, ids_);
    else
      h.add(c);
    return h;
  }

  // The k nearest codes of every query, sorted by (distance, position),
  // FAISS's padding past size(); indices hold the codes' ids.
  knn_result search(const packed_codes& queries, std::size_t k) const {
    check_queries(queries, "search");
    require(k >= 1, "gpu::binary_index::search: k must be at least 1, got 0");
    knn_result r = knn_over(codes_.data(), n_, queries, k);
    to_ids(r.indices);
    return r;
  }

  // Every code at Hamming distance < radius from each query (strict, as
  // FAISS), in position order; labels hold the ids.
  range_result range_search(const packed_codes& queries, int radius) const {
    check_queries(queries, "range_search");
    range_result r = range_over(codes_.data(), n_, queries, radius);
    to_ids(r.labels);
    return r;
  }

  // The filter resolved against this index as it is now (filter.hpp).
  prepared_filter prepare(const search_filter& filter) const {
    return nmhash::detail::prepare_filter(filter, n_, ids(), id_positions_, "gpu::binary_index filter");
  }

  // Top-k among the admitted codes only: exactly search() over them. The
  // admitted codes are gathered on the device and scanned alone.
  knn_result search(const packed_codes& queries, std::size_t k, const search_filter& filter) const {
    return search(queries, k, prepare(filter));
  }
  knn_result search(const packed_codes& queries, std::size_t k, const prepared_filter& filter) const {
    filter.check_size(n_, "gpu::binary_index::search");
    if (filter.all()) return search(queries, k);
    check_queries(queries, "search");
    require(k >= 1, "gpu::binary_index::search: k must be at least 1, got 0");
    const std::vector<std::uint64_t> keep = admitted_positions(filter);
    const device_buffer<unsigned char> kept = gather(keep);
    knn_result r = knn_over(kept.data(), keep.size(), queries, k);
    from_gathered(r.indices, keep);
    return r;
  }

  // Range search among the admitted codes only.
  range_result range_search(const packed_codes& queries, int radius, const search_filter& filter) const {
    return range_search(queries, radius, prepare(filter));
  }
  range_result range_search(const packed_codes& queries, int radius, const prepared_filter& filter) const {
    filter.check_size(n_, "gpu::binary_index::range_search");
    if (filter.all()) return range_search(queries, radius);
    check_queries(queries, "range_search");
    const std::vector<std::uint64_t> keep = admitted_positions(filter);
    const device_buffer<unsigned char> kept = gather(keep);
    range_result r = range_over(kept.data(), keep.size(), queries, radius);
    from_gathered(r.labels, keep);
    return r;
  }

 private:
  // Top-k over n codes at `codes` (device), positions as indices.
  knn_result knn_over(const unsigned char* codes, std::size_t n, const packed_codes& queries, std::size_t k) const {
    const std::size_t nq = queries.size();
    knn_result r = nmhash::detail::allocate_knn(nq, k, "gpu::binary_index::search");
    const std::size_t entries = r.distances.size();
    if (nq == 0) return r;
    device_buffer<std::uint64_t> dq(queries.data(), nq * queries.words_per_code());
    device_buffer<std::int32_t> dd(entries);
    device_buffer<std::int64_t> di(entries);
    hamming_knn_bytes(dq.data(), nq, codes, n, bits_, k, dd.data(), di.data(), stream_);
    sync();
    dd.copy_to(r.distances.data());
    di.copy_to(r.indices.data());
    return r;
  }

  // Range search over n codes at `codes` (device), positions as labels.
  range_result range_over(const unsigned char* codes, std::size_t n, const packed_codes& queries, int radius) const {
    const std::size_t nq = queries.size();
    range_result r;
    r.queries = nq;
    r.lims.assign(nq + 1, 0);
    if (nq == 0 || n == 0 || radius <= 0) return r;
    require(nq <= 0x7FFFFFFFu, "gpu::binary_index::range_search: ", nq, " queries exceed one grid");
    require(n < (std::size_t{1} << 32), "gpu::binary_index::range_search: ", n, " codes exceed 2^32 - 1");
    const auto rad = static_cast<unsigned>(radius);
    const unsigned words = static_cast<unsigned>(queries.words_per_code());
    device_buffer<std::uint64_t> dq(queries.data(), nq * words);
    device_buffer<unsigned> dcount(nq);
    with_kernels(codes, words, [&](auto db, auto w) {
      constexpr int W = decltype(w)::value;
      const auto kernel = kernels::hamming_range_count<W, decltype(db)>;
      NMHASH_LAUNCH(kernel, static_cast<unsigned>(nq), range_block_threads, 0, stream_)(dq.data(), db, n, words, rad,
                                                                                        dcount.data());
    });
    check_launch("hamming_range_count");
    sync();
    std::vector<unsigned> count(nq);
    dcount.copy_to(count.data());
    for (std::size_t q = 0; q < nq; ++q) r.lims[q + 1] = r.lims[q] + count[q];
    const std::size_t total = r.lims[nq];
    r.labels.resize(total);
    r.distances.resize(total);
    if (total == 0) return r;
    device_buffer<std::size_t> doff(r.lims.data(), nq);
    device_buffer<std::int64_t> dpos(total);
    device_buffer<std::int32_t> ddist(total);
    with_kernels(codes, words, [&](auto db, auto w) {
      constexpr int W = decltype(w)::value;
      const auto kernel = kernels::hamming_range_collect<W, decltype(db)>;
      NMHASH_LAUNCH(kernel, static_cast<unsigned>(nq), range_block_threads, 0, stream_)(
          dq.data(), db, n, words, rad, doff.data(), dpos.data(), ddist.data());
    });
    check_launch("hamming_range_collect");
    sync();
    dpos.copy_to(r.labels.data());
    ddist.copy_to(r.distances.data());
    return r;
  }

  // The admitted positions, ascending.
  static std::vector<std::uint64_t> admitted_positions(const prepared_filter& filter) {
    std::vector<std::uint64_t> keep;
    keep.reserve(filter.admitted());
    if (filter.sparse()) {
      keep.assign(filter.positions().begin(), filter.positions().end());
      return keep;
    }
    nmhash::detail::for_each_set_bit(filter.bitmap(), (filter.size() + 63) / 64,
                                     [&](std::size_t j) { keep.push_back(j); });
    return keep;
  }

  // The codes at positions `keep`, gathered on the device.
  device_buffer<unsigned char> gather(const std::vector<std::uint64_t>& keep) const {
    device_buffer<unsigned char> out(std::max<std::size_t>(1, keep.size()) * cs_);
    if (!keep.empty()) {
      device_buffer<std::uint64_t> dkeep(keep.data(), keep.size());
      const std::size_t total = keep.size() * cs_;
      NMHASH_LAUNCH(kernels::gather_codes<0>, detail::grid_for(total, 256), 256, 0, stream_)(
          codes_.data(), dkeep.data(), keep.size(), static_cast<unsigned>(cs_), out.data());
      check_launch("gather_codes");
      sync();
    }
    return out;
  }

  // Results over gathered codes: their rank among the gathered to the
  // position, then to the id.
  void from_gathered(std::vector<std::int64_t>& v, const std::vector<std::uint64_t>& keep) const {
    for (auto& x : v)
      if (x >= 0) x = static_cast<std::int64_t>(keep[static_cast<std::size_t>(x)]);
    to_ids(v);
  }

  template <int W>
  using width = std::integral_constant<int, W>;

  // f(byte_rows<G>, width<W>) for this index's layout and the query width.
  template <class F>
  void with_kernels(const unsigned char* codes, unsigned words, F&& f) const {
    detail::dispatch_byte_rows(codes, static_cast<unsigned>(cs_), [&](auto db) {
      if (words == 1)
        f(db, width<1>{});
      else
        f(db, width<0>{});
    });
  }

  void sync() const { NMHASH_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  void check_bits(const packed_codes& c, const char* what) const {
    require(c.bits() == bits_, "gpu::binary_index::", what, ": the codes have K = ", c.bits(),
            " bits but the index holds K = ", bits_, " bits");
  }
  void check_queries(const packed_codes& q, const char* what) const {
    require(q.bits() == bits_, "gpu::binary_index::", what, ": the queries have K = ", q.bits(),
            " bits but the index holds K = ", bits_, " bits");
  }

  void reallocate(std::size_t cap) {
    device_buffer<unsigned char> next(checked_mul(cap, cs_, "gpu::binary_index: codes x code size"));
    if (n_)
      NMHASH_CUDA_CHECK(
          cudaMemcpyAsync(next.data(), codes_.data(), n_ * cs_, cudaMemcpyDeviceToDevice, stream_));
    sync();
    codes_ = std::move(next);
    capacity_ = cap;
  }
  // Room for n codes, growing by half again at least.
  void grow(std::size_t n) {
    if (n <= capacity_) return;
    reallocate(n > capacity_ + capacity_ / 2 ? n : capacity_ + capacity_ / 2);
  }

  void append(const packed_codes& c) {
    std::vector<std::uint8_t> bytes(checked_mul(c.size(), cs_, "gpu::binary_index: codes x code size"));
    for (std::size_t i = 0; i < c.size(); ++i) std::memcpy(bytes.data() + i * cs_, c.row(i), cs_);
    grow(n_ + c.size());
    if (!bytes.empty())
      NMHASH_CUDA_CHECK(
          cudaMemcpyAsync(codes_.data() + n_ * cs_, bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_));
    sync();
    n_ += c.size();
  }

  void to_ids(std::vector<std::int64_t>& v) const {
    if (!explicit_ids_) return;
    for (auto& x : v)
      if (x >= 0) x = ids_[static_cast<std::size_t>(x)];
  }

  std::size_t bits_, cs_;
  cudaStream_t stream_;
  device_buffer<unsigned char> codes_;
  std::size_t n_ = 0, capacity_ = 0;
  std::vector<std::int64_t> ids_;
  bool explicit_ids_ = false;
  nmhash::detail::id_position_cache id_positions_;
};

}  // namespace nmhash::gpu
