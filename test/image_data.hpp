// Image files and image-list data sets written by the tests: PNG through
// libpng's simplified API, JPEG through TurboJPEG, and small synthetic data
// sets in DeepHash-pytorch's list format whose classes a network can learn
// (each label draws its own pattern).
#pragma once

#include <png.h>
#include <turbojpeg.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "nmhash/data/cifar10.hpp"
#include "nmhash/data/dataset.hpp"

namespace test_images {

inline void write_png(const std::string& path, const nmhash::data::image8& img) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(img.width);
  im.height = static_cast<png_uint_32>(img.height);
  im.format = img.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&im, path.c_str(), 0, img.pixels.data(), 0, nullptr))
    throw std::runtime_error(path + ": " + im.message);
}

inline std::vector<unsigned char> jpeg_bytes(const nmhash::data::image8& img, int quality = 95) {
  tjhandle h = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h, img.pixels.data(), static_cast<int>(img.width), 0, static_cast<int>(img.height),
                             img.channels == 3 ? TJPF_RGB : TJPF_GRAY, &buf, &size,
                             img.channels == 3 ? TJSAMP_444 : TJSAMP_GRAY, quality, 0);
  std::vector<unsigned char> out;
  if (rc == 0) out.assign(buf, buf + size);
  tjFree(buf);
  tjDestroy(h);
  if (rc != 0) throw std::runtime_error("tjCompress2 failed");
  return out;
}

inline void write_jpeg(const std::string& path, const nmhash::data::image8& img, int quality = 95) {
  const auto b = jpeg_bytes(img, quality);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// An image showing the patterns of the labels set in `labels` (one per
// label, up to 4) plus noise.
inline nmhash::data::image8 pattern_image(const std::vector<std::uint8_t>& labels, std::size_t size,
                                          std::size_t channels, std::mt19937_64& g) {
  nmhash::data::image8 img;
  img.resize(channels, size, size);
  std::uniform_int_distribution<int> noise(-12, 12);
  for (std::size_t y = 0; y < size; ++y)
    for (std::size_t x = 0; x < size; ++x) {
      int v[3] = {70, 70, 70};
      if (labels.size() > 0 && labels[0]) v[0] += 120;               // red
      if (labels.size() > 1 && labels[1] && (y / 2) % 2) v[1] += 130;  // green horizontal stripes
      if (labels.size() > 2 && labels[2] && (x / 2) % 2) v[2] += 130;  // blue vertical stripes
      if (labels.size() > 3 && labels[3] && x < size / 2 && y < size / 2) v[0] = v[1] = v[2] = 250;  // white corner
      for (std::size_t c = 0; c < channels; ++c) {
        const int val = channels == 3 ? v[c] : (v[0] + v[1] + v[2]) / 3 + ((labels.size() > 1 && labels[1] && (y / 2) % 2) ? 60 : 0);
        img.pixels[(y * size + x) * channels + c] = static_cast<std::uint8_t>(std::clamp(val + noise(g), 0, 255));
      }
    }
  return img;
}

struct synthetic_options {
  std::size_t train = 48, database = 60, test = 24;
  std::size_t classes = 3;  // single-label: one of `classes`; multi-label: any non-empty subset
  bool multi = false;
  std::size_t channels = 3;  // of the image files
  std::string format = "mixed";  // png, jpeg, or mixed (alternating)
  std::size_t size = 20;
  std::uint64_t seed = 5;
};

// Writes CIFAR-10's six binary batches (10,000 records each) to dir: image
// i of the pool has label i % 10 and pixel q of plane c equal to
// pixel(i, c, q), called in record order.
template <class Pixel>
void write_cifar10_batches(const std::string& dir, Pixel pixel) {
  std::size_t i = 0;
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"}) {
    std::string bytes(10000 * nmhash::data::cifar10_record, '\0');
    for (std::size_t k = 0; k < 10000; ++k, ++i) {
      char* r = &bytes[k * nmhash::data::cifar10_record];
      r[0] = static_cast<char>(i % 10);
      for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t q = 0; q < 1024; ++q) r[1 + c * 1024 + q] = static_cast<char>(pixel(i, c, q));
    }
    std::ofstream(dir + "/" + f, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
}

// Writes DIR/images/*.{png,jpg} and DIR/{train,database,test}.txt.
inline void write_synthetic_list_dataset(const std::string& dir, const synthetic_options& o) {
  std::filesystem::create_directories(dir + "/images");
  std::mt19937_64 g(o.seed);
  std::size_t counter = 0;
  for (const auto& [name, n] : std::vector<std::pair<std::string, std::size_t>>{
           {"train.txt", o.train}, {"database.txt", o.database}, {"test.txt", o.test}}) {
    std::ofstream list(dir + "/" + name);
    for (std::size_t i = 0; i < n; ++i, ++counter) {
      std::vector<std::uint8_t> labels(o.classes, 0);
      if (o.multi) {
        while (std::count(labels.begin(), labels.end(), 1) == 0)
          for (auto& l : labels) l = static_cast<std::uint8_t>(g() % 2);
      } else {
        labels[counter % o.classes] = 1;
      }
      const bool jpeg = o.format == "jpeg" || (o.format == "mixed" && counter % 2 == 1);
      const std::string rel = "images/" + std::to_string(counter) + (jpeg ? ".jpg" : ".png");
      const auto img = pattern_image(labels, o.size, o.channels, g);
      if (jpeg)
        write_jpeg(dir + "/" + rel, img);
      else
        write_png(dir + "/" + rel, img);
      list << rel;
      for (auto l : labels) list << ' ' << int(l);
      list << '\n';
    }
  }
}

}  // namespace test_images
