// 2-D convolution (cross-correlation, as in PyTorch) over NCHW input with
// a square or rectangular kernel, stride and zero padding. CPU: per sample,
// im2col into a (C kh kw) x (OH OW) matrix, then one Eigen GEMM with the
// (out, C kh kw) weight matrix; backward reuses the columns for the weight
// gradient and scatters W^T dY back with col2im.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "nmhash/nn/init.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

struct conv2d_options {
  std::size_t kernel_h = 3, kernel_w = 3;
  std::size_t stride = 1;
  std::size_t padding = 0;
};

template <class T>
class conv2d : public layer<T> {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using map = Eigen::Map<matrix>;
  using cmap = Eigen::Map<const matrix>;

 public:
  conv2d(std::size_t in_channels, std::size_t out_channels, conv2d_options opt,
         init_scheme init = init_scheme::kaiming_normal)
      : cin_(in_channels), cout_(out_channels), o_(opt), init_(init) {
    require(cin_ >= 1 && cout_ >= 1 && o_.kernel_h >= 1 && o_.kernel_w >= 1 && o_.stride >= 1,
            "conv2d: channels, kernel and stride must be positive");
  }

  std::string name() const override {
    return "conv2d(" + std::to_string(cin_) + " -> " + std::to_string(cout_) + ", " +
           std::to_string(o_.kernel_h) + "x" + std::to_string(o_.kernel_w) + ", stride " +
           std::to_string(o_.stride) + ", padding " + std::to_string(o_.padding) + ")";
  }

  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4 && in[1] == cin_, name(), ": input ", in.str(),
            " is not (N, ", cin_, ", H, W)");
    const std::size_t hp = in[2] + 2 * o_.padding, wp = in[3] + 2 * o_.padding;
    require(hp >= o_.kernel_h && wp >= o_.kernel_w, name(), ": input ", in.str(),
            " is smaller than the kernel");
    return shape4{in[0], cout_, (hp - o_.kernel_h) / o_.stride + 1, (wp - o_.kernel_w) / o_.stride + 1};
  }

  std::size_t parameter_count() const override { return cout_ * patch() + cout_; }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    return {{"weight", {cout_, cin_, o_.kernel_h, o_.kernel_w}}, {"bias", {cout_}}};
  }
  void bind(T* params, T* grads) override {
    w_ = params;
    b_ = params + cout_ * patch();
    dw_ = grads;
    db_ = grads + cout_ * patch();
  }
  void initialize(std::mt19937_64& gen) override {
    init_weights(w_, cout_ * patch(), patch(), cout_ * o_.kernel_h * o_.kernel_w, init_, gen);
    for (std::size_t o = 0; o < cout_; ++o) b_[o] = T(0);
  }

  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    const shape4 os = output_shape(x.shape());
    y.resize(os);
    x_ = &x;
    const std::size_t n = x.shape()[0], pix = os[2] * os[3];
    cols_.resize(n * patch() * pix);
    for (std::size_t s = 0; s < n; ++s) {
      T* col = cols_.data() + s * patch() * pix;
      im2col(x.data() + s * x.shape().row_size(), x.shape(), os, col);
      map Y(y.data() + s * os.row_size(), static_cast<Eigen::Index>(cout_), static_cast<Eigen::Index>(pix));
      Y.noalias() = cmap(w_, static_cast<Eigen::Index>(cout_), static_cast<Eigen::Index>(patch())) *
                    cmap(col, static_cast<Eigen::Index>(patch()), static_cast<Eigen::Index>(pix));
      Y.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(b_, static_cast<Eigen::Index>(cout_));
    }
  }

  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr, name(), ": backward() before forward()");
    const shape4 os = output_shape(x_->shape());
    require(dy.shape() == os, name(), ": output gradient ", dy.shape().str(), " does not match ", os.str());
    const std::size_t n = x_->shape()[0], pix = os[2] * os[3];
    const auto co = static_cast<Eigen::Index>(cout_), pa = static_cast<Eigen::Index>(patch()),
               px = static_cast<Eigen::Index>(pix);
    dx.resize(x_->shape());
    dx.fill(T(0));
    dcol_.resize(patch() * pix);
    map DW(dw_, co, pa);
    auto DB = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(db_, co);
    for (std::size_t s = 0; s < n; ++s) {
      cmap DY(dy.data() + s * os.row_size(), co, px);
      const T* col = cols_.data() + s * patch() * pix;
      DW.noalias() += DY * cmap(col, pa, px).transpose();
      DB += DY.rowwise().sum();
      map(dcol_.data(), pa, px).noalias() = cmap(w_, co, pa).transpose() * DY;
      col2im(dcol_.data(), x_->shape(), os, dx.data() + s * x_->shape().row_size());
    }
  }

 private:
  std::size_t patch() const { return cin_ * o_.kernel_h * o_.kernel_w; }

  // Rows (c, ki, kj), columns (oi, oj): the input value under kernel tap
  // (ki, kj) for output pixel (oi, oj), 0 in the padding.
  void im2col(const T* x, const shape4& in, const shape4& os, T* col) const {
    const std::size_t H = in[2], W = in[3], OH = os[2], OW = os[3];
    std::size_t r = 0;
    for (std::size_t c = 0; c < cin_; ++c)
      for (std::size_t ki = 0; ki < o_.kernel_h; ++ki)
        for (std::size_t kj = 0; kj < o_.kernel_w; ++kj, ++r) {
          T* out = col + r * OH * OW;
          for (std::size_t oi = 0; oi < OH; ++oi) {
            const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(oi * o_.stride + ki) -
                                     static_cast<std::ptrdiff_t>(o_.padding);
            for (std::size_t oj = 0; oj < OW; ++oj) {
              const std::ptrdiff_t j = static_cast<std::ptrdiff_t>(oj * o_.stride + kj) -
                                       static_cast<std::ptrdiff_t>(o_.padding);
              const bool inside = i >= 0 && j >= 0 && i < static_cast<std::ptrdiff_t>(H) &&
                                  j < static_cast<std::ptrdiff_t>(W);
              out[oi * OW + oj] =
                  inside ? x[(c * H + static_cast<std::size_t>(i)) * W + static_cast<std::size_t>(j)] : T(0);
            }
          }
        }
  }

  // Adds each column entry back to the input position it was read from.
  void col2im(const T* col, const shape4& in, const shape4& os, T* dx) const {
    const std::size_t H = in[2], W = in[3], OH = os[2], OW = os[3];
    std::size_t r = 0;
    for (std::size_t c = 0; c < cin_; ++c)
      for (std::size_t ki = 0; ki < o_.kernel_h; ++ki)
        for (std::size_t kj = 0; kj < o_.kernel_w; ++kj, ++r) {
          const T* src = col + r * OH * OW;
          for (std::size_t oi = 0; oi < OH; ++oi) {
            const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(oi * o_.stride + ki) -
                                     static_cast<std::ptrdiff_t>(o_.padding);
            if (i < 0 || i >= static_cast<std::ptrdiff_t>(H)) continue;
            for (std::size_t oj = 0; oj < OW; ++oj) {
              const std::ptrdiff_t j = static_cast<std::ptrdiff_t>(oj * o_.stride + kj) -
                                       static_cast<std::ptrdiff_t>(o_.padding);
              if (j < 0 || j >= static_cast<std::ptrdiff_t>(W)) continue;
              dx[(c * H + static_cast<std::size_t>(i)) * W + static_cast<std::size_t>(j)] += src[oi * OW + oj];
            }
          }
        }
  }

  std::size_t cin_, cout_;
  conv2d_options o_;
  init_scheme init_;
  T *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  const tensor<T>* x_ = nullptr;
  aligned_vector<T> cols_, dcol_;
};

}  // namespace nmhash::nn
