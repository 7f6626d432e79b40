// The decoder choice of data/image.hpp, measured: TurboJPEG against
// stb_image on JPEG, libpng against stb_image on PNG, one 256 x 256 RGB
// photo-like image decoded over and over on one thread.
#include <benchmark/benchmark.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <cmath>
#include <random>
#include <vector>

#include "../test/image_data.hpp"
#include "nmhash/data/image.hpp"

namespace {

nmhash::data::image8 photo() {
  nmhash::data::image8 img;
  img.resize(3, 256, 256);
  std::mt19937_64 g(1);
  for (std::size_t y = 0; y < 256; ++y)
    for (std::size_t x = 0; x < 256; ++x)
      for (std::size_t c = 0; c < 3; ++c)
        img.pixels[(y * 256 + x) * 3 + c] = static_cast<std::uint8_t>(std::clamp(
            127 + 60 * std::sin(static_cast<double>(x) * 0.05 * static_cast<double>(c + 1)) +
                40 * std::cos(static_cast<double>(y) * 0.07) + static_cast<double>(g() % 20),
            0.0, 255.0));
  return img;
}

const std::vector<unsigned char>& jpeg() {
  static const auto b = test_images::jpeg_bytes(photo(), 90);
  return b;
}

const std::vector<unsigned char>& png() {
  static const std::vector<unsigned char> b = [] {
    const std::string path = "/tmp/nmhash-bench-decoders.png";
    test_images::write_png(path, photo());
    auto bytes = nmhash::io::read_file(path);
    std::remove(path.c_str());
    return bytes;
  }();
  return b;
}

void decode_nmhash(benchmark::State& state, const std::vector<unsigned char>& file) {
  nmhash::data::image8 out;
  for (auto _ : state) {
    nmhash::data::decode_image(file.data(), file.size(), "bench", out);
    benchmark::DoNotOptimize(out.pixels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void decode_stb(benchmark::State& state, const std::vector<unsigned char>& file) {
  for (auto _ : state) {
    int w = 0, h = 0, n = 0;
    unsigned char* p = stbi_load_from_memory(file.data(), static_cast<int>(file.size()), &w, &h, &n, 3);
    benchmark::DoNotOptimize(p);
    stbi_image_free(p);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_jpeg_turbojpeg(benchmark::State& s) { decode_nmhash(s, jpeg()); }
void BM_jpeg_stb_image(benchmark::State& s) { decode_stb(s, jpeg()); }
void BM_png_libpng(benchmark::State& s) { decode_nmhash(s, png()); }
void BM_png_stb_image(benchmark::State& s) { decode_stb(s, png()); }

}  // namespace

BENCHMARK(BM_jpeg_turbojpeg);
BENCHMARK(BM_jpeg_stb_image);
BENCHMARK(BM_png_libpng);
BENCHMARK(BM_png_stb_image);

BENCHMARK_MAIN();
