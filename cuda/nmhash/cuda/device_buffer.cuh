// An owning, movable device allocation of n elements of T, with the host
// copies in and out. Every CUDA call is checked (nmhash::cuda_error).
#pragma once

#include <cstddef>
#include <utility>

#include "nmhash/cuda/error.cuh"

namespace nmhash::gpu {

template <class T>
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t n) : n_(n) {
    NMHASH_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), (n ? n : 1) * sizeof(T)));
  }
  device_buffer(const T* host, std::size_t n) : device_buffer(n) { copy_from(host, n); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

  // Makes room for at least n elements; the contents are lost when it grows.
  void reserve(std::size_t n) {
    if (p_ && n <= n_) return;
    *this = device_buffer(n);
  }
  // Copies the first n elements to / from host memory.
  void copy_to(T* host, std::size_t n) const {
    require(n <= n_, "device_buffer: copying ", n, " elements out of ", n_);
    if (n) NMHASH_CUDA_CHECK(cudaMemcpy(host, p_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  void copy_to(T* host) const { copy_to(host, n_); }
  void copy_from(const T* host, std::size_t n) {
    require(n <= n_, "device_buffer: copying ", n, " elements into ", n_);
    if (n) NMHASH_CUDA_CHECK(cudaMemcpy(p_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  // Sets every byte to zero.
  void zero(cudaStream_t stream = nullptr) {
    if (n_) NMHASH_CUDA_CHECK(cudaMemsetAsync(p_, 0, n_ * sizeof(T), stream));
  }

 private:
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace nmhash::gpu
