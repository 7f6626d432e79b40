// Kernels of the GPU training path's own layers, each the device twin of a
// CPU layer in include/nmhash/nn/ with the same arithmetic: ReLU, the
// scaled tanh of HashNet, bias terms per channel (convolution) or per
// feature (fully connected: HW = 1), and max pooling with the gradient to
// the first maximum of each window. The GEMMs and convolutions themselves
// are cuBLAS and cuDNN calls (nmhash/cuda/nn.cuh). Every launcher takes
// device pointers and a stream and checks its launch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "nmhash/cuda/device_utils.cuh"

namespace nmhash::gpu {

inline constexpr unsigned elementwise_threads = 256;

// Blocks of a grid-stride loop over n elements (capped; the loop covers the
// rest).
inline unsigned grid_for(std::size_t n, unsigned threads = elementwise_threads) {
  const std::size_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(blocks, 4096)));
}

namespace kernels {

__device__ __forceinline__ std::size_t grid_thread() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_stride() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}

template <class T>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y, std::size_t n) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) y[i] = x[i] > T(0) ? x[i] : T(0);
}

// The gradient at 0 is 0, as the CPU layer's.
template <class T>
__global__ void relu_backward(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                              std::size_t n) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <class T>
__global__ void scaled_tanh_forward(const T* __restrict__ x, T* __restrict__ y, std::size_t n, double beta) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride())
    y[i] = static_cast<T>(tanh(beta * static_cast<double>(x[i])));
}

template <class T>
__global__ void scaled_tanh_backward(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                     std::size_t n, double beta) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) {
    const double v = static_cast<double>(y[i]);
    dx[i] = static_cast<T>(static_cast<double>(dy[i]) * beta * (1.0 - v * v));
  }
}

// y[n, c, p] += bias[c] for y of shape (N, C, HW).
template <class T>
__global__ void bias_add(T* __restrict__ y, const T* __restrict__ bias, std::size_t total, std::size_t channels,
                         std::size_t hw) {
  for (std::size_t i = grid_thread(); i < total; i += grid_stride()) y[i] += bias[i / hw % channels];
}

// dbias[c] += sum over n and p of dy[n, c, p]; one block per channel, the
// sum in double.
template <class T>
__global__ void bias_grad(const T* __restrict__ dy, std::size_t samples, std::size_t channels, std::size_t hw,
                          T* __restrict__ dbias) {
  __shared__ double s_warp[32];
  const std::size_t c = blockIdx.x, per = samples * hw;
  double s = 0;
  for (std::size_t e = threadIdx.x; e < per; e += blockDim.x) {
    const std::size_t n = e / hw, p = e % hw;
    s += static_cast<double>(dy[(n * channels + c) * hw + p]);
  }
  const double total = block_sum(s, s_warp);
  if (threadIdx.x == 0) dbias[c] = static_cast<T>(static_cast<double>(dbias[c]) + total);
}

// One thread per output of a k x k window with stride s over (planes, H, W);
// argmax holds the flat input index of the first maximum (row-major scan).
template <class T>
__global__ void max_pool_forward(const T* __restrict__ x, T* __restrict__ y, std::uint32_t* __restrict__ argmax,
                                 std::size_t planes, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                                 std::size_t k, std::size_t s) {
  const std::size_t total = planes * OH * OW;
  for (std::size_t o = grid_thread(); o < total; o += grid_stride()) {
    const std::size_t p = o / (OH * OW), oi = o / OW % OH, oj = o % OW;
    const T* xp = x + p * H * W;
    std::size_t best = oi * s * W + oj * s;
    for (std::size_t a = 0; a < k; ++a)
      for (std::size_t b = 0; b < k; ++b) {
        const std::size_t idx = (oi * s + a) * W + oj * s + b;
        if (xp[idx] > xp[best]) best = idx;
      }
    y[o] = xp[best];
    argmax[o] = static_cast<std::uint32_t>(p * H * W + best);
  }
}

// dx (zeroed by the launcher) += dy at each window's maximum. Windows
// overlap only when k > s; the adds are atomic for that case.
template <class T>
__global__ void max_pool_backward(const T* __restrict__ dy, const std::uint32_t* __restrict__ argmax,
                                  std::size_t outputs, T* __restrict__ dx) {
  for (std::size_t o = grid_thread(); o < outputs; o += grid_stride()) atomicAdd(dx + argmax[o], dy[o]);
}

}  // namespace kernels

template <class T>
void relu_forward(const T* x, T* y, std::size_t n, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::relu_forward<T>, grid_for(n), elementwise_threads, 0, stream)(x, y, n);
  check_launch("relu_forward");
}

template <class T>
void relu_backward(const T* y, const T* dy, T* dx, std::size_t n, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::relu_backward<T>, grid_for(n), elementwise_threads, 0, stream)(y, dy, dx, n);
  check_launch("relu_backward");
}

template <class T>
void scaled_tanh_forward(const T* x, T* y, std::size_t n, double beta, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::scaled_tanh_forward<T>, grid_for(n), elementwise_threads, 0, stream)(x, y, n, beta);
  check_launch("scaled_tanh_forward");
}

template <class T>
void scaled_tanh_backward(const T* y, const T* dy, T* dx, std::size_t n, double beta, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::scaled_tanh_backward<T>, grid_for(n), elementwise_threads, 0, stream)(y, dy, dx, n,
                                                                                               beta);
  check_launch("scaled_tanh_backward");
}

template <class T>
void bias_add(T* y, const T* bias, std::size_t samples, std::size_t channels, std::size_t hw, cudaStream_t stream) {
  const std::size_t total = samples * channels * hw;
  if (!total) return;
  NMHASH_LAUNCH(kernels::bias_add<T>, grid_for(total), elementwise_threads, 0, stream)(y, bias, total, channels,
                                                                                        hw);
  check_launch("bias_add");
}

template <class T>
void bias_grad(const T* dy, std::size_t samples, std::size_t channels, std::size_t hw, T* dbias,
               cudaStream_t stream) {
  if (!channels) return;
  NMHASH_LAUNCH(kernels::bias_grad<T>, static_cast<unsigned>(channels), reduce_block_threads, 0, stream)(
      dy, samples, channels, hw, dbias);
  check_launch("bias_grad");
}

template <class T>
void max_pool_forward(const T* x, T* y, std::uint32_t* argmax, std::size_t planes, std::size_t H, std::size_t W,
                      std::size_t k, std::size_t s, cudaStream_t stream) {
  const std::size_t OH = (H - k) / s + 1, OW = (W - k) / s + 1, total = planes * OH * OW;
  if (!total) return;
  NMHASH_LAUNCH(kernels::max_pool_forward<T>, grid_for(total), elementwise_threads, 0, stream)(
      x, y, argmax, planes, H, W, OH, OW, k, s);
  check_launch("max_pool_forward");
}

template <class T>
void max_pool_backward(const T* dy, const std::uint32_t* argmax, std::size_t outputs, T* dx, std::size_t inputs,
                       cudaStream_t stream) {
  if (inputs) NMHASH_CUDA_CHECK(cudaMemsetAsync(dx, 0, inputs * sizeof(T), stream));
  if (!outputs) return;
  NMHASH_LAUNCH(kernels::max_pool_backward<T>, grid_for(outputs), elementwise_threads, 0, stream)(dy, argmax,
                                                                                                  outputs, dx);
  check_launch("max_pool_backward");
}

}  // namespace nmhash::gpu
