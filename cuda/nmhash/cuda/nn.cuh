// A network on the device: the mirror of a built nn::sequential<float>
// (layer by layer, the same flat parameter layout and parameter groups),
// with convolutions by cuDNN, fully connected layers by cuBLAS and the
// other layers by nmhash's kernels (nn_kernels.cuh). Parameters move
// between host and device in one copy, so checkpoints, the safetensors
// weights and the optimizers' ranges are those of the CPU network.
//
//   nmhash::gpu::dnn_context ctx;
//   nmhash::gpu::network dev(host_net, ctx);       // uploads the parameters
//   const float* u = dev.forward(d_x, batch, true);
//   dev.zero_grad();
//   dev.backward(d_du);
//
// Layers: conv2d (with bias), linear, relu, max_pool2d (unpadded), flatten and scaled_tanh (whose
// beta is read from the host layer at every call); any other layer is
// refused by name. Convolutions run in FP32 FMA math (no TF32) with
// deterministic algorithms, as close to the CPU arithmetic as cuDNN goes.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "nmhash/cuda/device_buffer.cuh"
#include "nmhash/cuda/nn_kernels.cuh"
#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
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
  virtual void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) = 0;
  virtual void backward(dnn_context& ctx, const float* x, const shape4& in, const float* y, const shape4& out,
                        const float* dy, float* dx) = 0;
};

namespace detail {

inline int to_int(std::size_t v, const char* what) {
  require(v <= 0x7FFFFFFF, "gpu::network: ", what, " ", v, " exceeds the range of cuBLAS and cuDNN");
  return static_cast<int>(v);
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
  pool_layer(std::size_t k, std::size_t s) : k_(k), s_(s) {}
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    argmax_.reserve(out.size());
    max_pool_forward(x, y, argmax_.data(), in[0] * in[1], in[2], in[3], k_, s_, ctx.stream());
  }
  void backward(dnn_context& ctx, const float*, const shape4& in, const float*, const shape4& out, const float* dy,
                float* dx) override {
    if (dx) max_pool_backward(dy, argmax_.data(), out.size(), dx, in.size(), ctx.stream());
  }

 private:
  std::size_t k_, s_;
  device_buffer<std::uint32_t> argmax_;
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
      : cin_(cin), cout_(cout), kh_(o.kernel_h), kw_(o.kernel_w) {
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
    b_ = params + wn;
    dw_ = grads;
    db_ = grads + wn;
  }
  void forward(dnn_context& ctx, const float* x, const shape4& in, float* y, const shape4& out) override {
    prepare(ctx, in, out);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnConvolutionForward(ctx.dnn(), &one, x_desc_, x, w_desc_, w_, conv_desc_, fwd_,
                                               ctx.workspace(fwd_bytes_), fwd_bytes_, &zero, y_desc_, y));
    bias_add(y, b_, out[0], cout_, out[2] * out[3], ctx.stream());
  }
  void backward(dnn_context& ctx, const float* x, const shape4& in, const float*, const shape4& out, const float* dy,
                float* dx) override {
    prepare(ctx, in, out);
    const float one = 1, zero = 0;
    NMHASH_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.dnn(), &one, x_desc_, x, y_desc_, dy, conv_desc_, bwd_filter_,
                                                      ctx.workspace(filter_bytes_), filter_bytes_, &one, w_desc_,
                                                      dw_));
    bias_grad(dy, out[0], cout_, out[2] * out[3], db_, ctx.stream());
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

  static void set_nchw(cudnnTensorDescriptor_t desc, const shape4& s) {
    NMHASH_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(s[0], "batch"),
                                                  to_int(s[1], "channels"), to_int(s[2], "height"),
                                                  to_int(s[3], "width")));
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
      std::unique_ptr<device_layer> d;
      if (auto* c = dynamic_cast<nn::conv2d<float>*>(&l); c && c->options().bias)
        d = std::make_unique<detail::conv_layer>(c->in_channels(), c->out_channels(), c->options());
      else if (auto* f = dynamic_cast<nn::linear<float>*>(&l))
        d = std::make_unique<detail::linear_layer>(f->in_features(), f->out_features());
      else if (dynamic_cast<nn::relu<float>*>(&l))
        d = std::make_unique<detail::relu_layer>();
      else if (auto* p = dynamic_cast<nn::max_pool2d<float>*>(&l); p && p->padding() == 0)
        d = std::make_unique<detail::pool_layer>(p->kernel(), p->stride());
      else if (dynamic_cast<nn::flatten<float>*>(&l))
        d = std::make_unique<detail::flatten_layer>();
      else if (auto* t = dynamic_cast<nn::scaled_tanh<float>*>(&l))
        d = std::make_unique<detail::tanh_layer>(*t);
      else
        nmhash::detail::fail("gpu::network: layer ", i, " (", l.name(), ") has no device implementation");
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

  void upload_parameters() { params_.copy_from(host_->parameters().data(), params_.size()); }
  void download_parameters() { params_.copy_to(host_->parameters().data(), params_.size()); }

  // Runs every layer on n samples of the host network's input shape at
  // device address x; the result (n x the output row) stays valid until
  // the next forward().
  const float* forward(const float* x, std::size_t n) {
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
