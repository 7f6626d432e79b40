// The convolution backend, chosen by measurement: nmhash's conv2d
// (im2col + Eigen GEMM, NCHW) against oneDNN's (libdnnl-dev; what
// PyTorch's CPU path runs), on the convolutions the presets spend their
// time in. oneDNN picks its own blocked layouts (format "any"); the
// reorders from and to NCHW, which a layer with NCHW tensors would pay, are
// timed with it. One iteration: forward (training), backward data,
// backward weights and bias. Named conv/<layer>/<backend>/<threads>.
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#include <Eigen/Core>
#include <dnnl.hpp>

#include "bench_data.hpp"
#include "nmhash/nn/conv2d.hpp"

namespace {

struct conv_case {
  const char* name;
  long n, cin, cout, h, k, stride, pad;
};

// Batch, channels, input side, kernel, stride, padding.
const std::vector<conv_case> cases = {
    {"lenet.conv2", 128, 32, 64, 12, 5, 1, 0},   {"cifar.conv2", 128, 32, 32, 32, 3, 1, 1},
    {"cifar.conv5", 128, 64, 128, 8, 3, 1, 1},   {"resnet.conv1", 32, 3, 64, 224, 7, 2, 3},
    {"resnet.layer1", 32, 64, 64, 56, 3, 1, 1},  {"resnet.layer3", 32, 256, 256, 14, 3, 1, 1},
    {"resnet.layer4", 32, 512, 512, 7, 3, 1, 1}, {"resnet50.1x1", 32, 256, 64, 56, 1, 1, 0},
};

void set_threads(int t) {
#if defined(_OPENMP)
  omp_set_num_threads(t);
#endif
  Eigen::setNbThreads(t);
}

std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd;
  for (auto& x : v) x = nd(g);
  return v;
}

long out_side(const conv_case& c) { return (c.h + 2 * c.pad - c.k) / c.stride + 1; }

void BM_nmhash(benchmark::State& state, conv_case c) {
  set_threads(static_cast<int>(state.range(0)));
  using nmhash::shape4;
  nmhash::nn::conv2d<float> conv(static_cast<std::size_t>(c.cin), static_cast<std::size_t>(c.cout),
                                 {static_cast<std::size_t>(c.k), static_cast<std::size_t>(c.k),
                                  static_cast<std::size_t>(c.stride), static_cast<std::size_t>(c.pad)});
  std::vector<float> params = random_vector(conv.parameter_count(), 1), grads(conv.parameter_count());
  conv.bind(params.data(), grads.data());
  const auto n = static_cast<std::size_t>(c.n), h = static_cast<std::size_t>(c.h), o = static_cast<std::size_t>(out_side(c));
  nmhash::tensor<float> x(shape4{n, static_cast<std::size_t>(c.cin), h, h}), y, dx;
  nmhash::tensor<float> dy(shape4{n, static_cast<std::size_t>(c.cout), o, o});
  const auto xv = random_vector(x.size(), 2), dyv = random_vector(dy.size(), 3);
  std::copy(xv.begin(), xv.end(), x.data());
  std::copy(dyv.begin(), dyv.end(), dy.data());
  for (auto _ : state) {
    conv.forward(x, y, true);
    conv.backward(dy, dx);
  }
}

void BM_onednn(benchmark::State& state, conv_case c) {
  set_threads(static_cast<int>(state.range(0)));
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const long o = out_side(c);
  const memory::dims src{c.n, c.cin, c.h, c.h}, wei{c.cout, c.cin, c.k, c.k}, bia{c.cout}, dst{c.n, c.cout, o, o},
      strides{c.stride, c.stride}, pad{c.pad, c.pad};
  const memory::desc src_any(src, dt::f32, tag::any), wei_any(wei, dt::f32, tag::any),
      bia_md(bia, dt::f32, tag::x), dst_any(dst, dt::f32, tag::any);
  const convolution_forward::primitive_desc fwd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_any, wei_any, bia_md,
                                dst_any, strides, pad, pad),
      eng);
  const convolution_backward_data::primitive_desc bwd_data(
      convolution_backward_data::desc(algorithm::convolution_direct, src_any, wei_any, dst_any, strides, pad, pad),
      eng, fwd);
  const convolution_backward_weights::primitive_desc bwd_weights(
      convolution_backward_weights::desc(algorithm::convolution_direct, src_any, wei_any, bia_md, dst_any, strides,
                                         pad, pad),
      eng, fwd);
  // User (NCHW / OIHW) memories and the primitives' own.
  auto xv = random_vector(static_cast<std::size_t>(c.n * c.cin * c.h * c.h), 2);
  auto dyv = random_vector(static_cast<std::size_t>(c.n * c.cout * o * o), 3);
  auto wv = random_vector(static_cast<std::size_t>(c.cout * c.cin * c.k * c.k), 1);
  std::vector<float> bv(static_cast<std::size_t>(c.cout)), yv(dyv.size()), dxv(xv.size()), dwv(wv.size()),
      dbv(bv.size());
  memory ux({src, dt::f32, tag::nchw}, eng, xv.data()), uy({dst, dt::f32, tag::nchw}, eng, yv.data()),
      udy({dst, dt::f32, tag::nchw}, eng, dyv.data()), udx({src, dt::f32, tag::nchw}, eng, dxv.data()),
      uw({wei, dt::f32, tag::oihw}, eng, wv.data()), udw({wei, dt::f32, tag::oihw}, eng, dwv.data()),
      ub(bia_md, eng, bv.data()), udb(bia_md, eng, dbv.data());
  memory px(fwd.src_desc(), eng), pw(fwd.weights_desc(), eng), py(fwd.dst_desc(), eng),
      pdy(bwd_data.diff_dst_desc(), eng), pdx(bwd_data.diff_src_desc(), eng), pwb(bwd_data.weights_desc(), eng),
      pdw(bwd_weights.diff_weights_desc(), eng), pdyw(bwd_weights.diff_dst_desc(), eng),
      pxw(bwd_weights.src_desc(), eng);
  const auto copy = [&](memory& from, memory& to) { reorder(from, to).execute(s, from, to); };
  convolution_forward conv_f(fwd);
  convolution_backward_data conv_bd(bwd_data);
  convolution_backward_weights conv_bw(bwd_weights);
  for (auto _ : state) {
    copy(ux, px);
    copy(uw, pw);
    conv_f.execute(s, {{DNNL_ARG_SRC, px}, {DNNL_ARG_WEIGHTS, pw}, {DNNL_ARG_BIAS, ub}, {DNNL_ARG_DST, py}});
    copy(py, uy);
    copy(udy, pdy);
    copy(uw, pwb);
    conv_bd.execute(s, {{DNNL_ARG_DIFF_DST, pdy}, {DNNL_ARG_WEIGHTS, pwb}, {DNNL_ARG_DIFF_SRC, pdx}});
    copy(pdx, udx);
    copy(udy, pdyw);
    copy(ux, pxw);
    conv_bw.execute(s, {{DNNL_ARG_SRC, pxw},
                        {DNNL_ARG_DIFF_DST, pdyw},
                        {DNNL_ARG_DIFF_WEIGHTS, pdw},
                        {DNNL_ARG_DIFF_BIAS, udb}});
    copy(pdw, udw);
    s.wait();
  }
  state.SetLabel(fwd.impl_info_str());
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, [] {
    for (const auto& c : cases)
      for (int t : bench::thread_counts()) {
        benchmark::RegisterBenchmark((std::string("conv/") + c.name + "/nmhash").c_str(), BM_nmhash, c)
            ->Arg(t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(1.0);
        benchmark::RegisterBenchmark((std::string("conv/") + c.name + "/onednn").c_str(), BM_onednn, c)
            ->Arg(t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(1.0);
      }
  });
}
