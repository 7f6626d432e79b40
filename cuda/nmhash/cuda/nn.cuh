// A network on the device: the mirror of a built nn::sequential<float>
// (layer by layer, the same flat parameter layout and parameter groups),
// with convolutions, batch norm and LRN by cuDNN, fully connected layers by
// cuBLAS and the other layers by nmhash's kernels (nn_kernels.cuh).
// Parameters (and batch norm's running statistics) move between host and
// device in one copy each, so checkpoints, the safetensors weights and the
// optimizers' ranges are those of the CPU network.
//
//   nmhash::gpu::dnn_context ctx;
//   nmhash::gpu::network dev(host_net, ctx);       // uploads the parameters
//   const float* u = dev.forward(d_x, batch, true);   // training mode
//   dev.zero_grad();
//   dev.backward(d_du);
//
// Layers: conv2d (with or without bias), linear, relu, max_pool2d (padded or
// not), adaptive_avg_pool2d, dropout (the host layer's masks),
// local_response_norm (cuDNN's LRN), batch_norm2d (cuDNN's spatial batch norm:
// batch statistics and PyTorch's running averages in training, the running
// statistics in evaluation), ResNet's residual blocks (nn::residual_block),
// flatten and scaled_tanh (whose beta is read from the host layer at every
// call); any other layer is refused by name. Convolutions run in FP32 FMA
// math (no TF32) with deterministic algorithms, as close to the CPU
// arithmetic as cuDNN goes.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/nn/adaptive_avg_pool2d.hpp"
#include "nmhash/nn/basic_block.hpp"
#include "nmhash/nn/batch_norm2d.hpp"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/dropout.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/local_response_norm.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/scaled_tanh.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::detail {

inline void cublas_check(cublasStatus_t s, const char* expr, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw error(concat(file, ":", line, ": ", expr, " failed: ", cublasGetStatusName(s), ": ",
                       cublasGetStatusString(s)));
}

inline void cudnn_check(cudnnStatus_t s, const char* expr, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS) throw error(concat(file, ":", line, ": ", expr, " failed: ", cudnnGetErrorString(s)));
}

}  // namespace nmhash::detail

#define NMHASH_CUBLAS_CHECK(expr) ::nmhash::detail::cublas_check((expr), #expr, __FILE__, __LINE__)
#define NMHASH_CUDNN_CHECK(expr) ::nmhash::detail::cudnn_check((expr), #expr, __FILE__, __LINE__)

namespace nmhash::gpu {

// The cuBLAS and cuDNN handles of one stream and a growing workspace.
class dnn_context {
 public:
  explicit dnn_context(cudaStream_t stream = nullptr) : stream_(stream) {
    NMHASH_CUBLAS_CHECK(cublasCreate(&blas_));
    NMHASH_CUBLAS_CHECK(cublasSetStream(blas_, stream));
    NMHASH_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH));
    NMHASH_CUDNN_CHECK(cudnnCreate(&dnn_));
    NMHASH_CUDNN_CHECK(cudnnSetStream(dnn_, stream));
  }
  dnn_context(const dnn_context&) = delete;
  dnn_context& operator=(const dnn_context&) = delete;
  ~dnn_context() {
    cudnnDestroy(dnn_);
    cublasDestroy(blas_);
  }
  cublasHandle_t blas() const { return blas_; }
  cudnnHandle_t dnn() const { return dnn_; }
  cudaStream_t stream() const { return stream_; }
  void* workspace(std::size_t bytes) {
    workspace_.reserve(bytes);
    return workspace_.data();
  }

 private:
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  device_buffer<unsigned char> workspace_;
};

// One layer on the device. x, y: the layer's input and output of the last
// forward pass (shapes in, out); dx is null where the input gradient is
// not needed.
class device_layer {
 public:
  virtual ~device_layer() = default;
  virtual void bind(float* /*params*/, float* /*grads*/) {}
  // Training or evaluation mode for the next forward passes.
  virtual void set_training(bool training) { training_ = training; }
  // Batch norm's running statistics between the host layer and the device.
  virtual void upload_buffers() {}
  virtual void download_buffers() {}
  virtual void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) = 0;
  virtual void backward(dnn_context& ctx, const float* x, const shape4& in, const float* y, const shape4& out,
                        const float* dy, float* dx) = 0;

 protected:
  bool training_ = true;
};

namespace detail {

inline int to_int(std::size_t v, const char* what) {
  require(v <= 0x7FFFFFFF, "gpu::network: ", what, " ", v, " exceeds the range of cuBLAS and cuDNN");
  return static_cast<int>(v);
}

// An NCHW descriptor of s; (N, C) shapes as (N, C, 1, 1).
inline void set_nchw(cudnnTensorDescriptor_t desc, const shape4& s) {
  const int h = s.rank() >= 3 ? to_int(s[2], "height") : 1, w = s.rank() >= 4 ? to_int(s[3], "width") : 1;
  NMHASH_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(s[0], "batch"),
                                                to_int(s[1], "channels"), h, w));
}

class relu_layer final : public device_layer {
 public:
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    relu_forward(x, y, in.size(), ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4&, const float* y, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) relu_backward(y, dy, dx, out.size(), ctx.stream());
  }
};

class tanh_layer final : public device_layer {
 public:
  explicit tanh_layer(const nn::scaled_tanh<float>& host) : host_(&host) {}
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    scaled_tanh_forward(x, y, in.size(), host_->beta(), ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4&, const float* y, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) scaled_tanh_backward(y, dy, dx, out.size(), host_->beta(), ctx.stream());
  }

 private:
  const nn::scaled_tanh<float>* host_;
};

class flatten_layer final : public device_layer {
 public:
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    NMHASH_CUDA_CHECK(cudaMemcpyAsync(y, x, in.size() * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream()));
  }
  void backward(dnn_context& ctx, const float*, const shape4&, const float*, const shape4& out, const float* dy,
                float* dx) override {
    if (dx)
      NMHASH_CUDA_CHECK(
          cudaMemcpyAsync(dx, dy, out.size() * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream()));
  }
};

class pool_layer final : public device_layer {
 public:
  pool_layer(std::size_t k, std::size_t s, std::size_t pad) : k_(k), s_(s), pad_(pad) {}
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    argmax_.reserve(out.size());
    max_pool_forward(x, y, argmax_.data(), in[0] * in[1], in[2], in[3], k_, s_, pad_, ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4& in, const float*, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) max_pool_backward(dy, argmax_.data(), out.size(), dx, in.size(), ctx.stream());
  }

 private:
  std::size_t k_, s_, pad_;
  device_buffer<std::uint32_t> argmax_;
};

class adaptive_pool_layer final : public device_layer {
 public:
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    adaptive_avg_pool_forward(x, y, in[0] * in[1], in[2], in[3], out[2], out[3], ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4& in, const float*, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) adaptive_avg_pool_backward(dy, dx, in[0] * in[1], in[2], in[3], out[2], out[3], ctx.stream());
  }
};

// y = x W^T + b with row-major x (n, in), W (out, in), y (n, out): in
// cuBLAS's column-major terms y^T = W x^T.
class linear_layer final : public device_layer {
 public:
  linear_layer(std::size_t in, std::size_t out) : in_(to_int(in, "features")), out_(to_int(out, "features")) {}
  void bind(float* params, float* grads) override {
    w_ = params;
    b_ = params + static_cast<std::size_t>(out_) * in_;
    dw_ = grads;
    db_ = grads + static_cast<std::size_t>(out_) * in_;
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    const int n = to_int(in[0], "batch");
    const float one = 1, zero = 0;
    NMHASH_CUBLAS_CHECK(cublasSgemm(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, out_, n, in_, &one, w_, in_, x, in_, &zero,
                                    y, out_));
    bias_add(y, b_, in[0], static_cast<std::size_t>(out_), 1, ctx.stream());
  }
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float*, const shape4&, const float* dy,
                float* dx) override {
    const int n = to_int(in[0], "batch");
    const float one = 1, zero = 0;
    // dW^T (in x out) += x^T (in x n) dy (n x out)
    NMHASH_CUBLAS_CHECK(cublasSgemm(ctx.blas(), CUBLAS_OP_N, CUBLAS_OP_T, in_, out_, n, &one, x, in_, dy, out_, &one,
                                    dw_, in_));
    bias_grad(dy, in[0], static_cast<std::size_t>(out_), 1, db_, ctx.stream());
    // dx^T (in x n) = W^T (in x out) dy^T (out x n)
    if (dx)
      NMHASH_CUBLAS_CHECK(cublasSgemm(ctx.blas(), CUBLAS_OP_N, CUBLAS_OP_N, in_, n, out_, &one, w_, in_, dy, out_,
                                      &zero, dx, in_));
  }

 private:
  int in_, out_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
};

// cuDNN's legacy convolution API: cross-correlation, NCHW, FP32 FMA math;
// descriptors and algorithms are chosen again when the batch size changes.
class conv_layer final : public device_layer {
 public:
  conv_layer(std::size_t cin, std::size_t cout, const nn::conv2d_options& o)
      : cin_(cin), cout_(cout), kh_(o.kernel_h), kw_(o.kernel_w), bias_(o.bias) {
    NMHASH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_));
    NMHASH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc_));
    NMHASH_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc_));
    NMHASH_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc_));
    NMHASH_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                  to_int(cout, "channels"), to_int(cin, "channels"),
                                                  to_int(kh_, "kernel"), to_int(kw_, "kernel")));
    const int pad = to_int(o.padding, "padding"), stride = to_int(o.stride, "stride");
    NMHASH_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc_, pad, pad, stride, stride, 1, 1,
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    NMHASH_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc_, CUDNN_FMA_MATH));
  }
  conv_layer(const conv_layer&) = delete;
  conv_layer& operator=(const conv_layer&) = delete;
  ~conv_layer() override {
    cudnnDestroyConvolutionDescriptor(conv_desc_);
    cudnnDestroyFilterDescriptor(w_desc_);
    cudnnDestroyTensorDescriptor(y_desc_);
    cudnnDestroyTensorDescriptor(x_desc_);
  }
  void bind(float* params, float* grads) override {
    const std::size_t wn = cout_ * cin_ * kh_ * kw_;
    w_ = params;
    b_ = bias_ ? params + wn : nullptr;
    dw_ = grads;
    db_ = bias_ ? grads + wn : nullptr;
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    prepare(ctx, in, out);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnConvolutionForward(ctx.dnn(), &one, x_desc_, x, w_desc_, w_, conv_desc_, fwd_,
                                               ctx.workspace(fwd_bytes_), fwd_bytes_, &zero, y_desc_, y));
    if (bias_) bias_add(y, b_, out[0], cout_, out[2] * out[3], ctx.stream());
  }
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float*, const shape4& out, const float* dy,
                float* dx) override {
    prepare(ctx, in, out);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.dnn(), &one, x_desc_, x, y_desc_, dy, conv_desc_, bwd_filter_,
                                                      ctx.workspace(filter_bytes_), filter_bytes_, &one, w_desc_,
                                                      dw_));
    if (bias_) bias_grad(dy, out[0], cout_, out[2] * out[3], db_, ctx.stream());
    if (dx)
      NMHASH_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.dnn(), &one, w_desc_, w_, y_desc_, dy, conv_desc_, bwd_data_,
                                                      ctx.workspace(data_bytes_), data_bytes_, &zero, x_desc_, dx));
  }

 private:
  template <class Perf>
  static auto pick(const Perf* perf, int found, const char* what) {
    for (int i = 0; i < found; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC) return perf[i].algo;
    for (int i = 0; i < found; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i].algo;
    nmhash::detail::fail("gpu::network: cuDNN offers no ", what, " algorithm for this convolution");
  }

  void prepare(dnn_context& ctx, const shape4& in, const shape4& out) {
    if (in == in_ && out == out_) return;
    set_nchw(x_desc_, in);
    set_nchw(y_desc_, out);
    int found = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    NMHASH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.dnn(), x_desc_, w_desc_, conv_desc_, y_desc_,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, fwd));
    fwd_ = pick(fwd, found, "forward");
    NMHASH_CUDNN_CHECK(
        cudnnGetConvolutionForwardWorkspaceSize(ctx.dnn(), x_desc_, w_desc_, conv_desc_, y_desc_, fwd_, &fwd_bytes_));
    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    NMHASH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        ctx.dnn(), x_desc_, y_desc_, conv_desc_, w_desc_, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, bf));
    bwd_filter_ = pick(bf, found, "filter-gradient");
    NMHASH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.dnn(), x_desc_, y_desc_, conv_desc_, w_desc_,
                                                                      bwd_filter_, &filter_bytes_));
    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    NMHASH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        ctx.dnn(), w_desc_, y_desc_, conv_desc_, x_desc_, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, bd));
    bwd_data_ = pick(bd, found, "input-gradient");
    NMHASH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.dnn(), w_desc_, y_desc_, conv_desc_, x_desc_,
                                                                    bwd_data_, &data_bytes_));
    in_ = in;
    out_ = out;
  }

  std::size_t cin_, cout_, kh_, kw_;
  bool bias_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  cudnnTensorDescriptor_t x_desc_ = nullptr, y_desc_ = nullptr;
  cudnnFilterDescriptor_t w_desc_ = nullptr;
  cudnnConvolutionDescriptor_t conv_desc_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_{};
  std::size_t fwd_bytes_ = 0, filter_bytes_ = 0, data_bytes_ = 0;
  shape4 in_{}, out_{};
};

// cuDNN's spatial batch norm with the host layer's eps and momentum: in
// training the batch statistics, with the running averages updated as
// PyTorch does (the variance unbiased); in evaluation the running
// statistics. The running statistics live on the device between
// upload_buffers() and download_buffers().
class bn_layer final : public device_layer {
 public:
  explicit bn_layer(nn::batch_norm2d<float>& host)
      : host_(&host), c_(host.channels()), mean_(c_), var_(c_), save_mean_(c_), save_inv_(c_) {
    NMHASH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_));
    NMHASH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bn_desc_));
    require(host.eps() >= CUDNN_BN_MIN_EPSILON, "gpu::network: batch norm eps ", host.eps(),
            " is below cuDNN's least, ", CUDNN_BN_MIN_EPSILON);
  }
  bn_layer(const bn_layer&) = delete;
  bn_layer& operator=(const bn_layer&) = delete;
  ~bn_layer() override {
    cudnnDestroyTensorDescriptor(bn_desc_);
    cudnnDestroyTensorDescriptor(x_desc_);
  }
  void bind(float* params, float* grads) override {
    w_ = params;
    b_ = params + c_;
    dw_ = grads;
    db_ = grads + c_;
  }
  void upload_buffers() override {
    const auto b = host_->buffers();  // running_mean, running_var
    mean_.copy_from(b.at(0).second->data(), c_);
    var_.copy_from(b.at(1).second->data(), c_);
  }
  void download_buffers() override {
    const auto b = host_->buffers();
    mean_.copy_to(b.at(0).second->data());
    var_.copy_to(b.at(1).second->data());
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    prepare(in);
    const float one = 1, zero = 0;
    if (training_)
      NMHASH_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
          ctx.dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_desc_, x, x_desc_, y, bn_desc_, w_, b_, host_->momentum(),
          mean_.data(), var_.data(), host_->eps(), save_mean_.data(), save_inv_.data()));
    else
      NMHASH_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(ctx.dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                                 x_desc_, x, x_desc_, y, bn_desc_, w_, b_,
                                                                 mean_.data(), var_.data(), host_->eps()));
  }
  // After a training-mode forward pass (the saved batch statistics).
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float*, const shape4&, const float* dy,
                float* dx) override {
    prepare(in);
    if (!dx) {
      scratch_.reserve(in.size());
      dx = scratch_.data();
    }
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnBatchNormalizationBackward(ctx.dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &one,
                                                       x_desc_, x, x_desc_, dy, x_desc_, dx, bn_desc_, w_, dw_, db_,
                                                       host_->eps(), save_mean_.data(), save_inv_.data()));
  }

 private:
  void prepare(const shape4& in) {
    if (in == in_) return;
    set_nchw(x_desc_, in);
    NMHASH_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(bn_desc_, x_desc_, CUDNN_BATCHNORM_SPATIAL));
    in_ = in;
  }

  nn::batch_norm2d<float>* host_;
  std::size_t c_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  device_buffer<float> mean_, var_, save_mean_, save_inv_, scratch_;
  cudnnTensorDescriptor_t x_desc_ = nullptr, bn_desc_ = nullptr;
  shape4 in_{};
};

// Dropout with the host layer's masks: each forward pass draws the mask from
// the host layer's generator (nn::dropout::draw), as the CPU network would,
// and uploads it.
class dropout_layer final : public device_layer {
 public:
  explicit dropout_layer(nn::dropout<float>& host) : host_(&host) {}
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    const auto& m = host_->draw(in.size(), training_);
    mask_.reserve(m.size());
    mask_.copy_from(m.data(), m.size());
    multiply(x, mask_.data(), y, in.size(), ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4&, const float*, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) multiply(dy, mask_.data(), dx, out.size(), ctx.stream());
  }

 private:
  nn::dropout<float>* host_;
  device_buffer<float> mask_;
};

// cuDNN's cross-channel LRN, PyTorch's LocalResponseNorm formula
// (x / (k + alpha / size * sum of squares)^beta) for odd window sizes.
class lrn_layer final : public device_layer {
 public:
  explicit lrn_layer(const nn::local_response_norm<float>& host) {
    require(host.size() % 2 == 1 && host.size() <= CUDNN_LRN_MAX_N, "gpu::network: local response norm of size ",
            host.size(), ": cuDNN takes odd sizes up to ", CUDNN_LRN_MAX_N);
    NMHASH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_));
    NMHASH_CUDNN_CHECK(cudnnCreateLRNDescriptor(&lrn_desc_));
    NMHASH_CUDNN_CHECK(
        cudnnSetLRNDescriptor(lrn_desc_, static_cast<unsigned>(host.size()), host.alpha(), host.beta(), host.k()));
  }
  lrn_layer(const lrn_layer&) = delete;
  lrn_layer& operator=(const lrn_layer&) = delete;
  ~lrn_layer() override {
    cudnnDestroyLRNDescriptor(lrn_desc_);
    cudnnDestroyTensorDescriptor(x_desc_);
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4&) override {
    prepare(in);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnLRNCrossChannelForward(ctx.dnn(), lrn_desc_, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, x_desc_,
                                                   x, &zero, x_desc_, y));
  }
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float* y, const shape4&, const float* dy,
                float* dx) override {
    if (!dx) return;
    prepare(in);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnLRNCrossChannelBackward(ctx.dnn(), lrn_desc_, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, x_desc_,
                                                    y, x_desc_, dy, x_desc_, x, &zero, x_desc_, dx));
  }

 private:
  void prepare(const shape4& in) {
    if (in == in_) return;
    set_nchw(x_desc_, in);
    in_ = in;
  }
  cudnnTensorDescriptor_t x_desc_ = nullptr;
  cudnnLRNDescriptor_t lrn_desc_ = nullptr;
  shape4 in_{};
};

std::unique_ptr<device_layer> make_layer(nn::layer<float>& l);

// ResNet's basic or bottleneck block (nn::residual_block): the main path's
// convolutions and batch norms with ReLUs between them, the downsample path
// or the identity, and ReLU of their sum.
class residual_layer final : public device_layer {
 public:
  explicit residual_layer(nn::residual_block<float>& host) : host_(&host) {
    for (std::size_t i = 0; i < host.stages(); ++i) {
      parts_.push_back(make_layer(host.conv(i)));
      parts_.push_back(make_layer(host.bn(i)));
    }
    if (host.downsample_conv()) {
      parts_.push_back(make_layer(*host.downsample_conv()));
      parts_.push_back(make_layer(*host.downsample_bn()));
    }
    conv_.resize(host.stages());
    bn_.resize(host.stages());
    relu_.resize(host.stages());
    shapes_.resize(host.stages() + 1);
  }
  void bind(float* params, float* grads) override {
    for (std::size_t k = 0; k < parts_.size(); ++k) {
      parts_[k]->bind(params, grads);
      const std::size_t n = host_part(k).parameter_count();
      params += n;
      grads += n;
    }
  }
  void set_training(bool training) override {
    device_layer::set_training(training);
    for (auto& p : parts_) p->set_training(training);
  }
  void upload_buffers() override {
    for (auto& p : parts_) p->upload_buffers();
  }
  void download_buffers() override {
    for (auto& p : parts_) p->download_buffers();
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    const std::size_t n = conv_.size();
    shapes_[0] = in;
    const float* cur = x;
    for (std::size_t i = 0; i < n; ++i) {
      shapes_[i + 1] = host_->conv(i).output_shape(shapes_[i]);
      const std::size_t size = shapes_[i + 1].size();
      conv_[i].reserve(size);
      bn_[i].reserve(size);
      parts_[2 * i]->forward(ctx, cur, shapes_[i], conv_[i].data(), shapes_[i + 1]);
      parts_[2 * i + 1]->forward(ctx, conv_[i].data(), shapes_[i + 1], bn_[i].data(), shapes_[i + 1]);
      if (i + 1 < n) {
        relu_[i].reserve(size);
        relu_forward(bn_[i].data(), relu_[i].data(), size, ctx.stream());
        cur = relu_[i].data();
      }
    }
    const float* shortcut = x;
    if (parts_.size() > 2 * n) {
      down_conv_.reserve(out.size());
      down_bn_.reserve(out.size());
      parts_[2 * n]->forward(ctx, x, in, down_conv_.data(), out);
      parts_[2 * n + 1]->forward(ctx, down_conv_.data(), out, down_bn_.data(), out);
      shortcut = down_bn_.data();
    }
    add_relu(bn_[n - 1].data(), shortcut, y, out.size(), ctx.stream());
  }
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float* y, const shape4& out, const float* dy,
                float* dx) override {
    const std::size_t n = conv_.size();
    sum_grad_.reserve(out.size());
    relu_backward(y, dy, sum_grad_.data(), out.size(), ctx.stream());
    // The main path, last stage first.
    const float* g = sum_grad_.data();
    for (std::size_t i = n; i-- > 0;) {
      const shape4 &si = shapes_[i], &so = shapes_[i + 1];
      bn_grad_.reserve(so.size());
      parts_[2 * i + 1]->backward(ctx, conv_[i].data(), so, bn_[i].data(), so, g, bn_grad_.data());
      float* gin = dx;
      if (i > 0) {
        conv_grad_.reserve(si.size());
        gin = conv_grad_.data();
      }
      parts_[2 * i]->backward(ctx, i ? relu_[i - 1].data() : x, si, conv_[i].data(), so, bn_grad_.data(), gin);
      if (i > 0) {
        relu_grad_.reserve(si.size());
        relu_backward(relu_[i - 1].data(), conv_grad_.data(), relu_grad_.data(), si.size(), ctx.stream());
        g = relu_grad_.data();
      }
    }
    // The shortcut: its gradient is added to the main path's.
    if (parts_.size() > 2 * n) {
      bn_grad_.reserve(out.size());
      parts_[2 * n + 1]->backward(ctx, down_conv_.data(), out, down_bn_.data(), out, sum_grad_.data(),
                                  bn_grad_.data());
      if (dx) conv_grad_.reserve(in.size());
      parts_[2 * n]->backward(ctx, x, in, down_conv_.data(), out, bn_grad_.data(), dx ? conv_grad_.data() : nullptr);
      if (dx) accumulate(dx, conv_grad_.data(), in.size(), ctx.stream());
    } else if (dx) {
      accumulate(dx, sum_grad_.data(), in.size(), ctx.stream());
    }
  }

 private:
  // The host sub-layer of parts_[k].
  const nn::layer<float>& host_part(std::size_t k) const {
    const std::size_t n = conv_.size();
    if (k < 2 * n) return k % 2 ? static_cast<const nn::layer<float>&>(host_->bn(k / 2)) : host_->conv(k / 2);
    return k == 2 * n ? static_cast<const nn::layer<float>&>(*host_->downsample_conv()) : *host_->downsample_bn();
  }

  nn::residual_block<float>* host_;
  std::vector<std::unique_ptr<device_layer>> parts_;
  std::vector<device_buffer<float>> conv_, bn_, relu_;
  device_buffer<float> down_conv_, down_bn_, sum_grad_, bn_grad_, conv_grad_, relu_grad_;
  std::vector<shape4> shapes_;
};

// The device twin of a host layer, or null where there is none.
inline std::unique_ptr<device_layer> make_layer(nn::layer<float>& l) {
  if (auto* c = dynamic_cast<nn::conv2d<float>*>(&l))
    return std::make_unique<conv_layer>(c->in_channels(), c->out_channels(), c->options());
  if (auto* f = dynamic_cast<nn::linear<float>*>(&l))
    return std::make_unique<linear_layer>(f->in_features(), f->out_features());
  if (dynamic_cast<nn::relu<float>*>(&l)) return std::make_unique<relu_layer>();
  if (auto* p = dynamic_cast<nn::max_pool2d<float>*>(&l))
    return std::make_unique<pool_layer>(p->kernel(), p->stride(), p->padding());
  if (dynamic_cast<nn::adaptive_avg_pool2d<float>*>(&l)) return std::make_unique<adaptive_pool_layer>();
  if (auto* b = dynamic_cast<nn::batch_norm2d<float>*>(&l)) return std::make_unique<bn_layer>(*b);
  if (auto* r = dynamic_cast<nn::residual_block<float>*>(&l)) return std::make_unique<residual_layer>(*r);
  if (auto* d = dynamic_cast<nn::dropout<float>*>(&l)) return std::make_unique<dropout_layer>(*d);
  if (auto* n = dynamic_cast<nn::local_response_norm<float>*>(&l)) return std::make_unique<lrn_layer>(*n);
  if (dynamic_cast<nn::flatten<float>*>(&l)) return std::make_unique<flatten_layer>();
  if (auto* t = dynamic_cast<nn::scaled_tanh<float>*>(&l)) return std::make_unique<tanh_layer>(*t);
  return nullptr;
}

}  // namespace detail

class network {
 public:
  // Mirrors the built host network and uploads its parameters.
  network(nn::sequential<float>& host, dnn_context& ctx) : host_(&host), ctx_(&ctx) {
    require(host.size() > 0, "gpu::network: the host network is empty");
    std::size_t offset = 0;
    params_ = device_buffer<float>(host.parameters().size());
    grads_ = device_buffer<float>(host.parameters().size());
    for (std::size_t i = 0; i < host.size(); ++i) {
      nn::layer<float>& l = host.at(i);
      std::unique_ptr<device_layer> d = detail::make_layer(l);
      if (!d) nmhash::detail::fail("gpu::network: layer ", i, " (", l.name(), ") has no device implementation");
      d->bind(params_.data() + offset, grads_.data() + offset);
      offset += l.parameter_count();
      layers_.push_back(std::move(d));
    }
    require(offset == host.parameters().size(), "gpu::network: the layers hold ", offset, " parameters, the buffer ",
            host.parameters().size());
    acts_.resize(layers_.size());
    shapes_.resize(layers_.size() + 1);
    upload_parameters();
    zero_grad();
  }

  // The parameters and the batch norms' running statistics.
  void upload_parameters() {
    params_.copy_from(host_->parameters().data(), params_.size());
    for (auto& l : layers_) l->upload_buffers();
  }
  void download_parameters() {
    params_.copy_to(host_->parameters().data(), params_.size());
    for (auto& l : layers_) l->download_buffers();
  }

  // Runs every layer on n samples of the host network's input shape at
  // device address x, in training mode (batch statistics) or evaluation
  // mode; the result (n x the output row) stays valid until the next
  // forward(). backward() follows a training-mode pass.
  const float* forward(const float* x, std::size_t n, bool training = true) {
    for (auto& l : layers_) l->set_training(training);
    shape4 in = host_->input_shape();
    shapes_[0] = batch_shape(in, n);
    x_ = x;
    const float* cur = x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      shapes_[i + 1] = host_->at(i).output_shape(shapes_[i]);
      acts_[i].reserve(shapes_[i + 1].size());
      layers_[i]->forward(*ctx_, cur, shapes_[i], acts_[i].data(), shapes_[i + 1]);
      cur = acts_[i].data();
    }
    return cur;
  }
  const shape4& output_shape() const { return shapes_.back(); }

  // Back-propagates dy (device, the last output's shape) through the last
  // forward pass, accumulating the parameter gradients. The network's
  // input gradient is computed only where the host network's first layer
  // asks for it; returns it (or null).
  const float* backward(const float* dy) {
    require(x_ != nullptr, "gpu::network: backward() before forward()");
    const float* g = dy;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      float* dx = nullptr;
      if (i > 0 || host_->at(0).input_gradient()) {
        grad_[i % 2].reserve(shapes_[i].size());
        dx = grad_[i % 2].data();
      }
      const float* x = i == 0 ? x_ : acts_[i - 1].data();
      layers_[i]->backward(*ctx_, x, shapes_[i], acts_[i].data(), shapes_[i + 1], g, dx);
      g = dx;
    }
    return g;
  }

  void zero_grad() { grads_.zero(ctx_->stream()); }
  float* parameters() { return params_.data(); }
  float* gradients() { return grads_.data(); }
  const float* gradients() const { return grads_.data(); }
  std::size_t parameter_count() const { return params_.size(); }
  const std::vector<nn::parameter_range>& ranges() const { return host_->ranges(); }

 private:
  static shape4 batch_shape(const shape4& s, std::size_t n) {
    switch (s.rank()) {
      case 1: return shape4{n};
      case 2: return shape4{n, s[1]};
      case 3: return shape4{n, s[1], s[2]};
      default: return shape4{n, s[1], s[2], s[3]};
    }
  }

  nn::sequential<float>* host_;
  dnn_context* ctx_;
  device_buffer<float> params_, grads_;
  std::vector<std::unique_ptr<device_layer>> layers_;
  std::vector<device_buffer<float>> acts_;
  device_buffer<float> grad_[2];
  std::vector<shape4> shapes_;
  const float* x_ = nullptr;
};

}  // namespace nmhash::gpu
