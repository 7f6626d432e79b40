// 2-D convolution (cross-correlation, as in PyTorch) over NCHW input with
// a square or rectangular kernel, stride and zero padding. CPU, groups of
// samples in parallel: im2col into a (C kh kw) x (samples OH OW) matrix per
// group, then one Eigen GEMM with the (out, C kh kw) weight matrix. A group
// holds one sample, or enough samples for about 256 output pixels where the
// feature maps are small, so that late layers still make wide products;
// its size depends on the shapes only. Training keeps the columns for
// backward; evaluation (encoding) only one group's per thread at a time.
// Backward reuses the columns for the
// weight gradient (summed per block of groups, then over the blocks in a
// fixed order, so the result does not depend on the thread count) and
// scatters W^T dY back with col2im.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "nmhash/core/parallel.hpp"
#include "nmhash/nn/init.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

struct conv2d_options {
  std::size_t kernel_h = 3, kernel_w = 3;
  std::size_t stride = 1;
  std::size_t padding = 0;
  bool bias = true;  // false: no bias (as before a batch norm; PyTorch's bias=False)
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
           std::to_string(o_.stride) + ", padding " + std::to_string(o_.padding) + (o_.bias ? "" : ", no bias") + ")";
  }

  shape4 output_shape(const shape4& in) const override {
    require(in.rank() == 4 && in[1] == cin_, name(), ": input ", in.str(),
            " is not (N, ", cin_, ", H, W)");
    const std::size_t hp = in[2] + 2 * o_.padding, wp = in[3] + 2 * o_.padding;
    require(hp >= o_.kernel_h && wp >= o_.kernel_w, name(), ": input ", in.str(),
            " is smaller than the kernel");
    return shape4{in[0], cout_, (hp - o_.kernel_h) / o_.stride + 1, (wp - o_.kernel_w) / o_.stride + 1};
  }

  std::size_t parameter_count() const override { return cout_ * patch() + (o_.bias ? cout_ : 0); }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    if (!o_.bias) return {{"weight", {cout_, cin_, o_.kernel_h, o_.kernel_w}}};
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
    if (o_.bias) init_biases(b_, cout_, patch(), init_, gen);
  }
  void set_init(init_scheme s) override { init_ = s; }

  std::size_t in_channels() const { return cin_; }
  std::size_t out_channels() const { return cout_; }
  const conv2d_options& options() const { return o_; }

  void forward(const tensor<T>& x, tensor<T>& y, bool training) override {
    const shape4 os = output_shape(x.shape());
    y.resize(os);
    x_ = &x;
    const std::size_t n = x.shape()[0], pix = os[2] * os[3], g = group(n, pix), groups = (n + g - 1) / g;
    const auto co = static_cast<Eigen::Index>(cout_), pa = static_cast<Eigen::Index>(patch());
    // Training keeps every group's columns for backward; evaluation needs
    // one group's per thread at a time.
    kept_ = training;
    if (kept_) cols_.resize(n * patch() * pix);
    if (g > 1) ytmp_.resize(groups * cout_ * g * pix);
    // One group of samples per block, always inside a parallel region: the
    // same bits for every thread count (parallel_blocks).
    parallel_blocks(static_cast<std::int64_t>(groups), 1, [&](std::int64_t gi, std::int64_t) {
      const auto first = static_cast<std::size_t>(gi) * g, count = std::min(g, n - first);
      const auto px = static_cast<Eigen::Index>(count * pix);
      T* col = kept_ ? cols_.data() + first * patch() * pix : columns(x, os, first, count);
      if (kept_)
        for (std::size_t s = 0; s < count; ++s)
          im2col(x.data() + (first + s) * x.shape().row_size(), x.shape(), os, col + s * pix, count * pix);
      T* out = g > 1 ? ytmp_.data() + static_cast<std::size_t>(gi) * cout_ * g * pix : y.data() + first * os.row_size();
      map Y(out, co, px);
      Y.noalias() = cmap(w_, co, pa) * cmap(col, pa, px);
      if (o_.bias) Y.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(b_, co);
      if (g > 1)  // (C, samples, pixels) to (samples, C, pixels)
        for (std::size_t s = 0; s < count; ++s)
          for (std::size_t c = 0; c < cout_; ++c)
            std::copy_n(out + (c * count + s) * pix, pix, y.data() + (first + s) * os.row_size() + c * pix);
    });
  }

  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr, name(), ": backward() before forward()");
    const shape4 os = output_shape(x_->shape());
    require(dy.shape() == os, name(), ": output gradient ", dy.shape().str(), " does not match ", os.str());
    const std::size_t n = x_->shape()[0], pix = os[2] * os[3], in_row = x_->shape().row_size(),
                      g = group(n, pix), groups = (n + g - 1) / g;
    const auto co = static_cast<Eigen::Index>(cout_), pa = static_cast<Eigen::Index>(patch());
    const bool want_dx = this->input_gradient();
    if (want_dx) dx.resize(x_->shape());
    // Groups per partial weight gradient: about kBlock samples each.
    const std::size_t per_block = std::max<std::size_t>(1, kBlock / g), blocks = (groups + per_block - 1) / per_block,
                      wsize = parameter_count(), cols = g * pix;
    partial_.assign(blocks * wsize, T(0));
    if (want_dx) dcol_.resize(blocks * patch() * cols);
    if (g > 1) dytmp_.resize(blocks * cout_ * cols);
    parallel_blocks(static_cast<std::int64_t>(blocks), 1, [&](std::int64_t bi, std::int64_t) {
      const auto b = static_cast<std::size_t>(bi);
      map DW(partial_.data() + b * wsize, co, pa);
      Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> DB(partial_.data() + b * wsize + cout_ * patch(),
                                                         o_.bias ? co : 0);
      T* dcol = want_dx ? dcol_.data() + b * patch() * cols : nullptr;
      for (std::size_t gi = b * per_block; gi < std::min(groups, (b + 1) * per_block); ++gi) {
        const std::size_t first = gi * g, count = std::min(g, n - first);
        const auto px = static_cast<Eigen::Index>(count * pix);
        const T* dyg = dy.data() + first * os.row_size();
        if (g > 1) {  // (samples, C, pixels) to (C, samples, pixels)
          T* t = dytmp_.data() + b * cout_ * cols;
          for (std::size_t s = 0; s < count; ++s)
            for (std::size_t c = 0; c < cout_; ++c)
              std::copy_n(dy.data() + (first + s) * os.row_size() + c * pix, pix, t + (c * count + s) * pix);
          dyg = t;
        }
        cmap DY(dyg, co, px);
        const T* col = kept_ ? cols_.data() + first * patch() * pix : columns(*x_, os, first, count);
        DW.noalias() += DY * cmap(col, pa, px).transpose();
        if (o_.bias) DB += DY.rowwise().sum();
        if (!want_dx) continue;
        map(dcol, pa, px).noalias() = cmap(w_, co, pa).transpose() * DY;
        for (std::size_t s = 0; s < count; ++s) {
          T* d = dx.data() + (first + s) * in_row;
          std::fill(d, d + in_row, T(0));
          col2im(dcol + s * pix, count * pix, x_->shape(), os, d);
        }
      }
    });
    const std::size_t total = wsize;
    parallel_for(static_cast<std::int64_t>((total + 4095) / 4096), threads{}, 1, [&](std::int64_t ci) {
      const std::size_t lo = static_cast<std::size_t>(ci) * 4096, hi = std::min(total, lo + 4096);
      for (std::size_t b = 0; b < blocks; ++b) {
        const T* p = partial_.data() + b * wsize;
        for (std::size_t k = lo; k < hi; ++k) dw_[k] += p[k];  // dw_ and db_ are adjacent
      }
    });
  }

 private:
  std::size_t patch() const { return cin_ * o_.kernel_h * o_.kernel_w; }

  // Samples per GEMM: enough output pixels (kColumns) that small feature
  // maps still make one wide product. It depends on the shapes only, never
  // on the thread count.
  static std::size_t group(std::size_t n, std::size_t pix) {
    return std::max<std::size_t>(1, std::min(n, (kColumns + pix - 1) / pix));
  }

  // The columns of samples [first, first + count) of x, in this thread's
  // scratch buffer (after a forward pass in evaluation mode).
  T* columns(const tensor<T>& x, const shape4& os, std::size_t first, std::size_t count) const {
    static thread_local aligned_vector<T> scratch;
    const std::size_t pix = os[2] * os[3];
    if (scratch.size() < patch() * count * pix) scratch.resize(patch() * count * pix);
    for (std::size_t s = 0; s < count; ++s)
      im2col(x.data() + (first + s) * x.shape().row_size(), x.shape(), os, scratch.data() + s * pix, count * pix);
    return scratch.data();
  }

  // Output columns [lo, hi) whose input column oj * stride + kj - padding
  // lies inside [0, W).
  void valid_columns(std::size_t kj, std::size_t W, std::size_t OW, std::size_t& lo, std::size_t& hi) const {
    const std::size_t st = o_.stride, pad = o_.padding;
    lo = kj >= pad ? 0 : (pad - kj + st - 1) / st;
    hi = W + pad > kj ? std::min(OW, (W + pad - kj + st - 1) / st) : 0;
    if (lo > hi) lo = hi;
  }

  // Rows (c, ki, kj) of `ld` entries, columns (oi, oj): the input value
  // under kernel tap (ki, kj) for output pixel (oi, oj), 0 in the padding.
  void im2col(const T* x, const shape4& in, const shape4& os, T* col, std::size_t ld) const {
    const std::size_t H = in[2], W = in[3], OH = os[2], OW = os[3], st = o_.stride, pad = o_.padding;
    std::size_t r = 0;
    for (std::size_t c = 0; c < cin_; ++c)
      for (std::size_t ki = 0; ki < o_.kernel_h; ++ki)
        for (std::size_t kj = 0; kj < o_.kernel_w; ++kj, ++r) {
          std::size_t lo, hi;
          valid_columns(kj, W, OW, lo, hi);
          T* out = col + r * ld;
          for (std::size_t oi = 0; oi < OH; ++oi, out += OW) {
            const std::size_t i = oi * st + ki;
            if (i < pad || i - pad >= H) {
              std::fill(out, out + OW, T(0));
              continue;
            }
            const T* src = x + (c * H + i - pad) * W + kj - pad;  // column oj reads src[oj * st]
            std::fill(out, out + lo, T(0));
            if (st == 1)
              std::copy(src + lo, src + hi, out + lo);
            else
              for (std::size_t oj = lo; oj < hi; ++oj) out[oj] = src[oj * st];
            std::fill(out + hi, out + OW, T(0));
          }
        }
  }

  // Adds each column entry (rows of `ld` entries) back to the input
  // position it was read from.
  void col2im(const T* col, std::size_t ld, const shape4& in, const shape4& os, T* dx) const {
    const std::size_t H = in[2], W = in[3], OH = os[2], OW = os[3], st = o_.stride, pad = o_.padding;
    std::size_t r = 0;
    for (std::size_t c = 0; c < cin_; ++c)
      for (std::size_t ki = 0; ki < o_.kernel_h; ++ki)
        for (std::size_t kj = 0; kj < o_.kernel_w; ++kj, ++r) {
          std::size_t lo, hi;
          valid_columns(kj, W, OW, lo, hi);
          const T* src = col + r * ld;
          for (std::size_t oi = 0; oi < OH; ++oi, src += OW) {
            const std::size_t i = oi * st + ki;
            if (i < pad || i - pad >= H) continue;
            T* dst = dx + (c * H + i - pad) * W + kj - pad;  // column oj adds to dst[oj * st]
            if (st == 1)
              for (std::size_t oj = lo; oj < hi; ++oj) dst[oj] += src[oj];
            else
              for (std::size_t oj = lo; oj < hi; ++oj) dst[oj * st] += src[oj];
          }
        }
  }

  static constexpr std::size_t kBlock = 16;     // samples per partial weight gradient
  static constexpr std::size_t kColumns = 256;  // output pixels per GEMM, at least
  std::size_t cin_, cout_;
  conv2d_options o_;
  init_scheme init_;
  T *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  const tensor<T>* x_ = nullptr;
  bool kept_ = false;  // cols_ holds the last forward pass's columns
  aligned_vector<T> cols_, dcol_, partial_, ytmp_, dytmp_;
};

}  // namespace nmhash::nn
