// Contiguous tensors: an owning tensor and a non-owning tensor_view, row-major
// (NCHW for images), with the element type and the device as template
// parameters. Layers, losses and optimizers work on these.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "nmhash/core/aligned_allocator.hpp"
#include "nmhash/core/device.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

// Up to four extents; unused trailing extents are 1.
class shape4 {
 public:
  shape4() = default;
  shape4(std::initializer_list<std::size_t> dims) {
    require(dims.size() >= 1 && dims.size() <= 4, "shape4: 1 to 4 dimensions, got ", dims.size());
    rank_ = dims.size();
    std::copy(dims.begin(), dims.end(), d_.begin());
  }
  std::size_t rank() const { return rank_; }
  std::size_t operator[](std::size_t i) const { return d_[i]; }
  std::size_t size() const { return d_[0] * d_[1] * d_[2] * d_[3]; }
  // Elements per index of the first dimension (a "row": one sample).
  std::size_t row_size() const { return d_[1] * d_[2] * d_[3]; }
  std::string str() const {
    std::string s = "(";
    for (std::size_t i = 0; i < rank_; ++i) s += std::to_string(d_[i]) + (i + 1 < rank_ ? ", " : "");
    return s + ")";
  }
  friend bool operator==(const shape4& a, const shape4& b) { return a.rank_ == b.rank_ && a.d_ == b.d_; }
  friend bool operator!=(const shape4& a, const shape4& b) { return !(a == b); }

 private:
  std::size_t rank_ = 1;
  std::array<std::size_t, 4> d_{0, 1, 1, 1};
};

template <class T, class Device = cpu>
class tensor_view {
  static_assert(std::is_same_v<Device, cpu>, "tensor_view: only nmhash::cpu storage is available");

 public:
  tensor_view() = default;
  tensor_view(T* data, shape4 shape) : data_(data), shape_(shape) {}
  T* data() const { return data_; }
  const shape4& shape() const { return shape_; }
  std::size_t size() const { return shape_.size(); }
  T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  shape4 shape_{};
};

template <class T, class Device = cpu>
class tensor {
  static_assert(std::is_same_v<Device, cpu>, "tensor: only nmhash::cpu storage is available");

 public:
  tensor() = default;
  explicit tensor(shape4 shape, T value = T(0)) : shape_(shape), data_(shape.size(), value) {}

  const shape4& shape() const { return shape_; }
  std::size_t size() const { return data_.size(); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

  // Reallocates only when the element count grows; contents are unspecified
  // afterwards (zero when newly allocated).
  void resize(shape4 shape) {
    shape_ = shape;
    data_.resize(shape.size());
  }
  void fill(T v) { std::fill(data_.begin(), data_.end(), v); }

  tensor_view<T, Device> view() { return {data_.data(), shape_}; }
  tensor_view<const T, Device> view() const { return {data_.data(), shape_}; }

 private:
  shape4 shape_{};
  aligned_vector<T> data_;
};

}  // namespace nmhash
