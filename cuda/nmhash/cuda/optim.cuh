// The optimizers of include/nmhash/optim/ on the device: the same update
// rules in the same precision, over a model's flat device parameter and
// gradient buffers, range by range with each range's group options. Their
// state buffers carry the CPU optimizers' names and layouts, so a
// checkpoint moves between the two.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/optim/groups.hpp"

namespace nmhash::gpu {

namespace kernels {

template <class T>
__global__ void adam_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                          std::size_t n, T b1, T b2, T wd, T step, T inv_c2, T eps) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) {
    const T gi = g[i] + wd * p[i];
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    p[i] -= step * m[i] / (static_cast<T>(sqrt(static_cast<double>(v[i] * inv_c2))) + eps);
  }
}

template <class T>
__global__ void sgd_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ v, std::size_t n, double mu,
                         double lr, double wd) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) {
    const double d = static_cast<double>(g[i]) + wd * static_cast<double>(p[i]);
    v[i] = static_cast<T>(mu * static_cast<double>(v[i]) + d);
    p[i] = static_cast<T>(static_cast<double>(p[i]) - lr * static_cast<double>(v[i]));
  }
}

template <class T>
__global__ void rmsprop_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ s, std::size_t n,
                             double alpha, double lr, double wd, double eps) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) {
    const double gi = static_cast<double>(g[i]) + wd * static_cast<double>(p[i]);
    s[i] = static_cast<T>(alpha * static_cast<double>(s[i]) + (1 - alpha) * gi * gi);
    p[i] = static_cast<T>(static_cast<double>(p[i]) - lr * gi / (sqrt(static_cast<double>(s[i])) + eps));
  }
}

}  // namespace kernels

namespace detail {
template <class T>
void ensure_state(device_buffer<T>& b, std::size_t n) {
  if (b.size() == n) return;
  b = device_buffer<T>(n);
  b.zero();
}

// f(range, its group's options) for every range, each checked against the
// n parameters.
template <class F>
void for_each_range(const std::vector<nn::parameter_range>& ranges, std::size_t n, const optim::group_table& groups,
                    const char* who, F&& f) {
  for (const auto& r : ranges) {
    require(r.offset + r.count <= n, who, ": range past the ", n, " parameters");
    f(r, groups[r.group]);
  }
}
}  // namespace detail

// Adam as nmhash::optim::adam (torch.optim.Adam, L2 weight decay).
template <class T>
class adam {
 public:
  explicit adam(optim::group_table groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : groups_(std::move(groups)), b1_(beta1), b2_(beta2), eps_(eps) {}
  void step(T* params, const T* grads, std::size_t n, const std::vector<nn::parameter_range>& ranges,
            cudaStream_t stream = nullptr) {
    detail::ensure_state(m_, n);
    detail::ensure_state(v_, n);
    ++t_;
    const double c1 = 1 - std::pow(b1_, static_cast<double>(t_));
    const double c2 = 1 - std::pow(b2_, static_cast<double>(t_));
    detail::for_each_range(ranges, n, groups_, "gpu::adam", [&](const nn::parameter_range& r, const optim::group_options& o) {
      NMHASH_LAUNCH(kernels::adam_step<T>, grid_for(r.count), elementwise_threads, 0, stream)(
          params + r.offset, grads + r.offset, m_.data() + r.offset, v_.data() + r.offset, r.count,
          static_cast<T>(b1_), static_cast<T>(b2_), static_cast<T>(o.weight_decay), static_cast<T>(o.lr / c1),
          static_cast<T>(1 / c2), static_cast<T>(eps_));
      check_launch("adam_step");
    });
  }
  std::size_t steps() const { return t_; }
  void set_steps(std::size_t t) { t_ = t; }
  std::vector<std::pair<std::string, device_buffer<T>*>> state() { return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}}; }

 private:
  optim::group_table groups_;
  double b1_, b2_, eps_;
  device_buffer<T> m_, v_;
  std::size_t t_ = 0;
};

// SGD with momentum as nmhash::optim::sgd.
template <class T>
class sgd {
 public:
  sgd(double momentum, optim::group_table groups) : mu_(momentum), groups_(std::move(groups)) {
    require(momentum >= 0.0 && momentum < 1.0, "gpu::sgd: momentum ", momentum, " outside [0, 1)");
  }
  void step(T* params, const T* grads, std::size_t n, const std::vector<nn::parameter_range>& ranges,
            cudaStream_t stream = nullptr) {
    detail::ensure_state(v_, n);
    detail::for_each_range(ranges, n, groups_, "gpu::sgd", [&](const nn::parameter_range& r, const optim::group_options& o) {
      NMHASH_LAUNCH(kernels::sgd_step<T>, grid_for(r.count), elementwise_threads, 0, stream)(
          params + r.offset, grads + r.offset, v_.data() + r.offset, r.count, mu_, o.lr, o.weight_decay);
      check_launch("sgd_step");
    });
  }
  std::vector<std::pair<std::string, device_buffer<T>*>> state() { return {{"momentum", &v_}}; }

 private:
  double mu_;
  optim::group_table groups_;
  device_buffer<T> v_;
};

// RMSprop as nmhash::optim::rmsprop.
template <class T>
class rmsprop {
 public:
  explicit rmsprop(optim::group_table groups, double alpha = 0.99, double eps = 1e-8)
      : groups_(std::move(groups)), alpha_(alpha), eps_(eps) {}
  void step(T* params, const T* grads, std::size_t n, const std::vector<nn::parameter_range>& ranges,
            cudaStream_t stream = nullptr) {
    detail::ensure_state(s_, n);
    detail::for_each_range(ranges, n, groups_, "gpu::rmsprop", [&](const nn::parameter_range& r, const optim::group_options& o) {
      NMHASH_LAUNCH(kernels::rmsprop_step<T>, grid_for(r.count), elementwise_threads, 0, stream)(
          params + r.offset, grads + r.offset, s_.data() + r.offset, r.count, alpha_, o.lr, o.weight_decay, eps_);
      check_launch("rmsprop_step");
    });
  }
  std::vector<std::pair<std::string, device_buffer<T>*>> state() { return {{"square_avg", &s_}}; }

 private:
  optim::group_table groups_;
  double alpha_, eps_;
  device_buffer<T> s_;
};

}  // namespace nmhash::gpu
