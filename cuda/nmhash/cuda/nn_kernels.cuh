// Kernels of the GPU training path's own layers, each the device twin of a
// CPU layer in include/nmhash/nn/ with the same arithmetic: ReLU, the
// scaled tanh of HashNet, bias terms per channel (convolution) or per
// feature (fully connected: HW = 1), max pooling (with implicit -infinity
// padding) with the gradient to the first maximum of each window, adaptive
// average pooling, the sums of a residual block, and dropout's product with
// its mask. The GEMMs and convolutions themselves
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

// One thread per output of a k x k window with stride s and padding pad
// over (planes, H, W); argmax holds the flat input index of the first
// maximum inside the input (row-major scan), as nn::max_pool2d.
template <class T>
__global__ void max_pool_forward(const T* __restrict__ x, T* __restrict__ y, std::uint32_t* __restrict__ argmax,
                                 std::size_t planes, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                                 std::size_t k, std::size_t s, std::size_t pad) {
  const std::size_t total = planes * OH * OW;
  for (std::size_t o = grid_thread(); o < total; o += grid_stride()) {
    const std::size_t p = o / (OH * OW), oi = o / OW % OH, oj = o % OW;
    const T* xp = x + p * H * W;
    const std::size_t i0 = oi * s >= pad ? oi * s - pad : 0, i_end = oi * s + k - pad, i1 = i_end < H ? i_end : H;
    const std::size_t j0 = oj * s >= pad ? oj * s - pad : 0, j_end = oj * s + k - pad, j1 = j_end < W ? j_end : W;
    std::size_t best = i0 * W + j0;
    for (std::size_t a = i0; a < i1; ++a)
      for (std::size_t b = j0; b < j1; ++b) {
        const std::size_t idx = a * W + b;
        if (xp[idx] > xp[best]) best = idx;
      }
    y[o] = xp[best];
    argmax[o] = static_cast<std::uint32_t>(p * H * W + best);
  }
}

// Rows [floor(i H / OH), ceil((i + 1) H / OH)) of adaptive pooling's output
// row i (columns likewise), as nn::adaptive_avg_pool2d.
__device__ __forceinline__ std::size_t adaptive_begin(std::size_t i, std::size_t in, std::size_t out) {
  return i * in / out;
}
__device__ __forceinline__ std::size_t adaptive_end(std::size_t i, std::size_t in, std::size_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// One thread per output cell: the mean of its window, summed in double.
template <class T>
__global__ void adaptive_avg_pool_forward(const T* __restrict__ x, T* __restrict__ y, std::size_t planes,
                                          std::size_t H, std::size_t W, std::size_t OH, std::size_t OW) {
  const std::size_t total = planes * OH * OW;
  for (std::size_t o = grid_thread(); o < total; o += grid_stride()) {
    const std::size_t p = o / (OH * OW), i = o / OW % OH, j = o % OW;
    const std::size_t r0 = adaptive_begin(i, H, OH), r1 = adaptive_end(i, H, OH);
    const std::size_t c0 = adaptive_begin(j, W, OW), c1 = adaptive_end(j, W, OW);
    double sum = 0;
    for (std::size_t r = r0; r < r1; ++r)
      for (std::size_t c = c0; c < c1; ++c) sum += static_cast<double>(x[(p * H + r) * W + c]);
    y[o] = static_cast<T>(sum / static_cast<double>((r1 - r0) * (c1 - c0)));
  }
}

// One thread per input: the sum, over the output cells whose window holds
// it, of dy / the cell's size (a gather: no atomics, a fixed order).
template <class T>
__global__ void adaptive_avg_pool_backward(const T* __restrict__ dy, T* __restrict__ dx, std::size_t planes,
                                           std::size_t H, std::size_t W, std::size_t OH, std::size_t OW) {
  const std::size_t total = planes * H * W;
  for (std::size_t e = grid_thread(); e < total; e += grid_stride()) {
    const std::size_t p = e / (H * W), r = e / W % H, c = e % W;
    // The output rows whose window holds row r lie within one of
    // floor(r OH / H).
    const std::size_t i_lo = r * OH / H, j_lo = c * OW / W;
    T sum = T(0);
    for (std::size_t i = i_lo > 0 ? i_lo - 1 : 0; i < OH && adaptive_begin(i, H, OH) <= r; ++i) {
      if (adaptive_end(i, H, OH) <= r) continue;
      const std::size_t rows = adaptive_end(i, H, OH) - adaptive_begin(i, H, OH);
      for (std::size_t j = j_lo > 0 ? j_lo - 1 : 0; j < OW && adaptive_begin(j, W, OW) <= c; ++j) {
        if (adaptive_end(j, W, OW) <= c) continue;
        const std::size_t cols = adaptive_end(j, W, OW) - adaptive_begin(j, W, OW);
        sum += static_cast<T>(static_cast<double>(dy[(p * OH + i) * OW + j]) / static_cast<double>(rows * cols));
      }
    }
    dx[e] = sum;
  }
}

// y = max(a + b, 0): a residual block's output.
template <class T>
__global__ void add_relu(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y, std::size_t n) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) {
    const T v = a[i] + b[i];
    y[i] = v > T(0) ? v : T(0);
  }
}

// y = x * m elementwise: dropout's mask (and its gradient).
template <class T>
__global__ void multiply(const T* __restrict__ x, const T* __restrict__ m, T* __restrict__ y, std::size_t n) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) y[i] = x[i] * m[i];
}

// y += x: a residual block's two input gradients.
template <class T>
__global__ void accumulate(T* __restrict__ y, const T* __restrict__ x, std::size_t n) {
  for (std::size_t i = grid_thread(); i < n; i += grid_stride()) y[i] += x[i];
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
                      std::size_t k, std::size_t s, std::size_t pad, cudaStream_t stream) {
  const std::size_t OH = (H + 2 * pad - k) / s + 1, OW = (W + 2 * pad - k) / s + 1, total = planes * OH * OW;
  if (!total) return;
  NMHASH_LAUNCH(kernels::max_pool_forward<T>, grid_for(total), elementwise_threads, 0, stream)(
      x, y, argmax, planes, H, W, OH, OW, k, s, pad);
  check_launch("max_pool_forward");
}

template <class T>
void adaptive_avg_pool_forward(const T* x, T* y, std::size_t planes, std::size_t H, std::size_t W, std::size_t OH,
                               std::size_t OW, cudaStream_t stream) {
  const std::size_t total = planes * OH * OW;
  if (!total) return;
  NMHASH_LAUNCH(kernels::adaptive_avg_pool_forward<T>, grid_for(total), elementwise_threads, 0, stream)(
      x, y, planes, H, W, OH, OW);
  check_launch("adaptive_avg_pool_forward");
}

template <class T>
void adaptive_avg_pool_backward(const T* dy, T* dx, std::size_t planes, std::size_t H, std::size_t W, std::size_t OH,
                                std::size_t OW, cudaStream_t stream) {
  const std::size_t total = planes * H * W;
  if (!total) return;
  NMHASH_LAUNCH(kernels::adaptive_avg_pool_backward<T>, grid_for(total), elementwise_threads, 0, stream)(
      dy, dx, planes, H, W, OH, OW);
  check_launch("adaptive_avg_pool_backward");
}

template <class T>
void add_relu(const T* a, const T* b, T* y, std::size_t n, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::add_relu<T>, grid_for(n), elementwise_threads, 0, stream)(a, b, y, n);
  check_launch("add_relu");
}

template <class T>
void multiply(const T* x, const T* m, T* y, std::size_t n, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::multiply<T>, grid_for(n), elementwise_threads, 0, stream)(x, m, y, n);
  check_launch("multiply");
}

template <class T>
void accumulate(T* y, const T* x, std::size_t n, cudaStream_t stream) {
  if (!n) return;
  NMHASH_LAUNCH(kernels::accumulate<T>, grid_for(n), elementwise_threads, 0, stream)(y, x, n);
  check_launch("accumulate");
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
