// Decoding against training: images/s of decode + resize + random crop +
// flip + normalisation (the batch loader, all threads) next to images/s of
// one training step (forward, backward, Adam) of each backbone preset, so
// docs/datasets.md can say whether decoding limits training.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "../test/image_data.hpp"
#include "bench_data.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/data/image.hpp"
#include "nmhash/loss/dpsh.hpp"
#include "nmhash/loss/memory_bank.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/optim/adam.hpp"

namespace {

namespace d = nmhash::data;

// Encoded photo-like images (smooth gradients, texture and noise) held in
// memory: decoding cost without file-system noise.
class encoded_source : public d::image_source {
 public:
  encoded_source(std::size_t n, std::size_t side, bool jpeg) : labels_(nmhash::labels::single(std::vector<std::int32_t>(n, 0))) {
    std::mt19937_64 g(3);
    for (std::size_t i = 0; i < n; ++i) {
      d::image8 img;
      img.resize(3, side, side);
      for (std::size_t y = 0; y < side; ++y)
        for (std::size_t x = 0; x < side; ++x)
          for (std::size_t c = 0; c < 3; ++c)
            img.pixels[(y * side + x) * 3 + c] = static_cast<std::uint8_t>(
                std::clamp(127.0 + 60 * std::sin(static_cast<double>(x) * 0.05 * static_cast<double>(c + 1 + i % 3)) +
                               40 * std::cos(static_cast<double>(y) * 0.07) + static_cast<double>(g() % 20),
                           0.0, 255.0));
      if (jpeg) {
        files_.push_back(test_images::jpeg_bytes(img, 90));
      } else {
        const std::string path = "/tmp/nmhash-bench-" + std::to_string(i) + ".png";
        test_images::write_png(path, img);
        files_.push_back(nmhash::io::read_file(path));
        std::remove(path.c_str());
      }
    }
  }
  std::size_t size() const override { return files_.size(); }
  d::image_shape shape() const override { return {3, 0, 0}; }
  const nmhash::labels& labels() const override { return labels_; }
  std::size_t num_classes() const override { return 1; }
  void decode(std::size_t i, d::image8& out) const override {
    d::decode_image(files_[i].data(), files_[i].size(), "image", out);
  }

 private:
  std::vector<std::vector<unsigned char>> files_;
  nmhash::labels labels_;
};

void run_loader(benchmark::State& state, std::shared_ptr<const d::image_source> src, std::size_t input,
                std::size_t resize) {
  d::transform_options t;
  t.channels = 3;
  t.height = t.width = input;
  t.resize = resize;
  t.random_crop = t.flip = true;
  t.mean = {0.485f, 0.456f, 0.406f};
  t.stddev = {0.229f, 0.224f, 0.225f};
  const d::batch_loader<float> loader(std::move(src), t);
  std::vector<std::size_t> ids(loader.source().size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
  nmhash::tensor<float> x;
  std::size_t epoch = 0;
  for (auto _ : state) {
    loader.load(ids, 0, ids.size(), x, true, 1, epoch++);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ids.size()));
}

// 256 x 256 JPEG / PNG photos to 224 x 224 crops (CNN-F's input).
void BM_load_jpeg_256_to_224(benchmark::State& state) {
  run_loader(state, std::make_shared<encoded_source>(64, 256, true), 224, 256);
}
void BM_load_png_256_to_224(benchmark::State& state) {
  run_loader(state, std::make_shared<encoded_source>(64, 256, false), 224, 256);
}
// CIFAR-10 from memory (no decoding), 32 x 32 with flips.
void BM_load_cifar_memory_32(benchmark::State& state) {
  std::vector<std::uint8_t> px(256 * 32 * 32 * 3);
  std::mt19937_64 g(1);
  for (auto& p : px) p = static_cast<std::uint8_t>(g());
  run_loader(state,
             std::make_shared<d::memory_source>(d::image_shape{3, 32, 32}, std::move(px),
                                                nmhash::labels::single(std::vector<std::int32_t>(256, 0)), 1),
             32, 0);
}

// One training step (forward, DPSH loss against a 512-image bank,
// backward, Adam) of a preset, batch `range(0)`.
void BM_train_step(benchmark::State& state, const char* preset) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  const auto& arch = *nmhash::nn::find_architecture(preset);
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, 48, batch);
  net.initialize(1);
  net.set_input_gradient(false);
  nmhash::optim::adam<float> opt({{}, {1e-4, 1e-5}});
  std::vector<std::int32_t> ids(512);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i % 10);
  nmhash::loss::memory_bank<float> bank(nmhash::labels::single(ids), 48);
  nmhash::tensor<float> x(nmhash::shape4{batch, arch.channels, arch.height, arch.width}), du;
  std::mt19937_64 g(2);
  std::normal_distribution<float> nd;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = nd(g);
  std::vector<std::size_t> idx(batch);
  for (std::size_t i = 0; i < batch; ++i) idx[i] = i;
  for (auto _ : state) bench::dpsh_train_step(net, bank, opt, x, idx, du);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}

}  // namespace

BENCHMARK(BM_load_jpeg_256_to_224)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_load_png_256_to_224)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_load_cifar_memory_32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_train_step, lenet, "lenet")->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_train_step, cifar, "cifar")->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_train_step, cnnf, "cnnf")->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

BENCHMARK_MAIN();
