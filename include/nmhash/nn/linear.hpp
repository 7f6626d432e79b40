// Fully connected layer: y = x W^T + b for x of shape (N, in) (any trailing
// shape whose row size is `in`), W of shape (out, in), b of shape (out).
// CPU math through Eigen on the flat buffers.
#pragma once

#include <Eigen/Core>

#include "nmhash/core/parallel.hpp"
#include "nmhash/nn/init.hpp"
#include "nmhash/nn/layer.hpp"

namespace nmhash::nn {

template <class T>
class linear : public layer<T> {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using map = Eigen::Map<matrix>;
  using cmap = Eigen::Map<const matrix>;

 public:
  linear(std::size_t in, std::size_t out, init_scheme init = init_scheme::kaiming_normal)
      : in_(in), out_(out), init_(init) {
    require(in >= 1 && out >= 1, "linear: sizes must be positive, got ", in, " -> ", out);
  }

  std::string name() const override {
    return "linear(" + std::to_string(in_) + " -> " + std::to_string(out_) + ")";
  }
  shape4 output_shape(const shape4& in) const override {
    require(in.row_size() == in_, name(), ": input ", in.str(), " has ", in.row_size(),
            " features per sample, expected ", in_);
    return shape4{in[0], out_};
  }
  std::size_t parameter_count() const override { return out_ * in_ + out_; }
  std::vector<std::pair<std::string, std::vector<std::size_t>>> parameter_layout() const override {
    return {{"weight", {out_, in_}}, {"bias", {out_}}};
  }
  void bind(T* params, T* grads) override {
    w_ = params;
    b_ = params + out_ * in_;
    dw_ = grads;
    db_ = grads + out_ * in_;
  }
  void initialize(std::mt19937_64& gen) override {
    init_weights(w_, out_ * in_, in_, out_, init_, gen);
    init_biases(b_, out_, in_, init_, gen);
  }
  void set_init(init_scheme s) override { init_ = s; }

  void forward(const tensor<T>& x, tensor<T>& y, bool) override {
    y.resize(output_shape(x.shape()));
    x_ = &x;
    const auto n = static_cast<Eigen::Index>(x.shape()[0]);
    const auto in = static_cast<Eigen::Index>(in_), out = static_cast<Eigen::Index>(out_);
    map Y(y.data(), n, out);
    const cmap X(x.data(), n, in), W(w_, out, in);
    // Fixed blocks of rows and outputs: the same bits for every thread count
    // (parallel_blocks), and work for every thread at small batches.
    const Eigen::Index col_blocks = (out + kCols - 1) / kCols;
    parallel_blocks(((n + kRows - 1) / kRows) * col_blocks, 1, [&](Eigen::Index bi, Eigen::Index) {
      const Eigen::Index r0 = (bi / col_blocks) * kRows, r1 = std::min(n, r0 + kRows);
      const Eigen::Index o0 = (bi % col_blocks) * kCols, o1 = std::min(out, o0 + kCols);
      auto Yb = Y.block(r0, o0, r1 - r0, o1 - o0);
      Yb.noalias() = X.middleRows(r0, r1 - r0) * W.middleRows(o0, o1 - o0).transpose();
      Yb.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(b_ + o0, o1 - o0);
    });
  }

  void backward(const tensor<T>& dy, tensor<T>& dx) override {
    require(x_ != nullptr, name(), ": backward() before forward()");
    const auto n = static_cast<Eigen::Index>(x_->shape()[0]);
    const auto in = static_cast<Eigen::Index>(in_), out = static_cast<Eigen::Index>(out_);
    require(dy.shape() == output_shape(x_->shape()), name(), ": output gradient ", dy.shape().str(),
            " does not match the forward output");
    const cmap DY(dy.data(), n, out), X(x_->data(), n, in), W(w_, out, in);
    map DW(dw_, out, in);
    parallel_blocks(out, kRows, [&](Eigen::Index o0, Eigen::Index o1) {
      DW.middleRows(o0, o1 - o0).noalias() += DY.middleCols(o0, o1 - o0).transpose() * X;
    });
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(db_, out) += DY.colwise().sum();
    if (!this->input_gradient()) return;
    dx.resize(x_->shape());
    map DX(dx.data(), n, in);
    const Eigen::Index col_blocks = (in + kCols - 1) / kCols;
    parallel_blocks(((n + kRows - 1) / kRows) * col_blocks, 1, [&](Eigen::Index bi, Eigen::Index) {
      const Eigen::Index r0 = (bi / col_blocks) * kRows, r1 = std::min(n, r0 + kRows);
      const Eigen::Index i0 = (bi % col_blocks) * kCols, i1 = std::min(in, i0 + kCols);
      DX.block(r0, i0, r1 - r0, i1 - i0).noalias() = DY.middleRows(r0, r1 - r0) * W.middleCols(i0, i1 - i0);
    });
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  const T* weight() const { return w_; }
  const T* bias() const { return b_; }

 private:
  static constexpr Eigen::Index kRows = 32;   // rows per product block
  static constexpr Eigen::Index kCols = 512;  // output (forward) or input (backward) columns per block

  std::size_t in_, out_;
  init_scheme init_;
  T *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  const tensor<T>* x_ = nullptr;
};

}  // namespace nmhash::nn
