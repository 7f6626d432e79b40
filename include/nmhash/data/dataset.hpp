// The data layer: one small interface every image source implements, the
// transforms that turn a decoded image into a network input (DeepHash-
// pytorch's: resize of the shorter edge, random crop and horizontal flip
// for training, centre crop for evaluation, per-channel normalisation), and
// the batch loader that decodes a batch in parallel.
//
// Augmentation draws are a function of (seed, epoch, image) alone, never of
// a shared stream, so a batch is bit-identical whatever the thread count
// and a resumed run sees the batches it would have seen.
#pragma once

#include <utility>
#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/core/tensor.hpp"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash::data {

// The decode budget: the largest image the decoders accept, in pixels
// (PIL's MAX_IMAGE_PIXELS, 89,478,485, by default; set_max_image_pixels()
// and the tools' --max-image-pixels change it for the process). A larger
// declared size is refused, naming the image and the limit, before any
// pixel is allocated.
inline constexpr std::size_t default_max_image_pixels = 89478485;
inline std::atomic<std::size_t>& max_image_pixels_setting() {
  static std::atomic<std::size_t> limit{default_max_image_pixels};
  return limit;
}
inline std::size_t max_image_pixels() { return max_image_pixels_setting().load(std::memory_order_relaxed); }
inline void set_max_image_pixels(std::size_t pixels) {
  require(pixels >= 1, "set_max_image_pixels: the limit must be at least 1 pixel");
  max_image_pixels_setting().store(pixels, std::memory_order_relaxed);
}

struct image8 {
  std::size_t channels = 0, height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // height x width x channels

  std::size_t size() const { return channels * height * width; }
  void resize(std::size_t c, std::size_t h, std::size_t w) {
    channels = c;
    height = h;
    width = w;
    pixels.resize(c * h * w);
  }
  std::uint8_t at(std::size_t y, std::size_t x, std::size_t c) const { return pixels[(y * width + x) * channels + c]; }
};

// Converts to `channels` (1 or 3): grey to RGB repeats the grey value; RGB
// to grey is ITU-R 601-2 luma (L = (299 R + 587 G + 114 B) / 1000, rounded),
// PIL's convert("L").
inline void convert_channels(const image8& in, std::size_t channels, image8& out) {
  require(channels == 1 || channels == 3, "convert_channels: ", channels, " channels (1 or 3)");
  require(in.channels == 1 || in.channels == 3, "convert_channels: image of ", in.channels, " channels");
  const std::size_t px = in.height * in.width;
  out.resize(channels, in.height, in.width);
  if (in.channels == channels) {
    std::copy(in.pixels.begin(), in.pixels.end(), out.pixels.begin());
  } else if (channels == 3) {
    for (std::size_t p = 0; p < px; ++p) out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = in.pixels[p];
  } else {
    for (std::size_t p = 0; p < px; ++p) {
      const unsigned v = 299u * in.pixels[3 * p] + 587u * in.pixels[3 * p + 1] + 114u * in.pixels[3 * p + 2];
      out.pixels[p] = static_cast<std::uint8_t>((v + 500u) / 1000u);
    }
  }
}

struct image_shape {
  std::size_t channels = 0, height = 0, width = 0;  // height = width = 0: varies per image
  bool fixed() const { return height && width; }
  std::string str() const {
    return std::to_string(channels) + "x" + (fixed() ? std::to_string(height) + "x" + std::to_string(width) : "any");
  }
};

// A labelled collection of images, indexed 0 .. size() - 1.
class image_source {
 public:
  virtual ~image_source() = default;
  virtual std::size_t size() const = 0;
  // Shape of a decoded image; height and width 0 when they vary per image
  // (the channel count is then that of the network input the source feeds).
  virtual image_shape shape() const = 0;
  // Labels of every image: class ids or multi-hot sets over num_classes().
  virtual const nmhash::labels& labels() const = 0;
  virtual std::size_t num_classes() const = 0;
  // Decodes image i (height x width x channels, 8-bit). Safe to call from
  // several threads at once.
  virtual void decode(std::size_t i, image8& out) const = 0;
  // The image's name in messages (its file, or "image i").
  virtual std::string describe(std::size_t i) const { return "image " + std::to_string(i); }
};

// Images held in memory, all of one shape (height x width x channels each,
// consecutive), with their labels.
class memory_source : public image_source {
 public:
  memory_source(image_shape shape, std::vector<std::uint8_t> pixels, nmhash::labels labels, std::size_t num_classes)
      : shape_(shape), pixels_(std::move(pixels)), labels_(std::move(labels)), classes_(num_classes) {
    require(shape_.fixed() && shape_.channels >= 1, "memory_source: image shape ", shape_.str());
    require(pixels_.size() == labels_.size() * shape_.channels * shape_.height * shape_.width, "memory_source: ",
            pixels_.size(), " bytes of pixels for ", labels_.size(), " images of ", shape_.str());
  }
  std::size_t size() const override { return labels_.size(); }
  image_shape shape() const override { return shape_; }
  const nmhash::labels& labels() const override { return labels_; }
  std::size_t num_classes() const override { return classes_; }
  void decode(std::size_t i, image8& out) const override {
    require(i < size(), "memory_source: image ", i, " of ", size());
    out.resize(shape_.channels, shape_.height, shape_.width);
    const std::size_t n = out.size();
    std::copy(pixels_.begin() + static_cast<std::ptrdiff_t>(i * n), pixels_.begin() + static_cast<std::ptrdiff_t>((i + 1) * n),
              out.pixels.begin());
  }

 private:
  image_shape shape_;
  std::vector<std::uint8_t> pixels_;
  nmhash::labels labels_;
  std::size_t classes_;
};

// A source split for retrieval: indices into `pool` for the training set,
// the queries and the database, and the training set's division into T'
// (trains an NMLayer run) and V (scores its bits).
struct retrieval_split {
  std::string name;
  std::shared_ptr<const image_source> pool;
  std::vector<std::size_t> train, query, database, train_nm, validation;
};

// Every ceil(n / limit)-th entry of v (all when limit is 0): a subset of at
// most `limit` that keeps the class balance of class-ordered splits (the
// meaning of every tool's --train-limit, --query-limit and --db-limit).
inline std::vector<std::size_t> subsample(const std::vector<std::size_t>& v, std::size_t limit) {
  if (!limit || limit >= v.size()) return v;
  const std::size_t step = (v.size() + limit - 1) / limit;
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < v.size(); i += step) out.push_back(v[i]);
  return out;
}

// From a decoded image to a network input.
struct transform_options {
  std::size_t channels = 1;        // network input channels (1 or 3)
  std::size_t height = 0, width = 0;  // network input size
  std::size_t resize = 0;          // shorter edge resized to this first (0: no resize)
  bool random_crop = false;        // training: random crop, else centre crop
  bool flip = false;               // training: horizontal flip with probability 1/2
  std::vector<float> mean{0.0f}, stddev{1.0f};  // per channel, on pixels / 255
};

namespace detail {

// Bilinear (triangle-filter) resampling of one axis, widened by the scale
// when shrinking (antialiased, as PIL's BILINEAR): weights for output
// positions [0, out) over input [0, in).
struct axis_weights {
  std::vector<std::size_t> first, count;
  std::vector<float> w;  // count[i] weights per output i, at offset i * span
  std::size_t span = 0;
};

inline axis_weights resample_weights(std::size_t in, std::size_t out) {
  axis_weights a;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = scale > 1 ? scale : 1.0;
  a.span = static_cast<std::size_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(out);
  a.count.resize(out);
  a.w.assign(out * a.span, 0.0f);
  for (std::size_t i = 0; i < out; ++i) {
    const double centre = (static_cast<double>(i) + 0.5) * scale;
    const auto lo = static_cast<std::ptrdiff_t>(std::max(0.0, std::floor(centre - support)));
    const auto hi = static_cast<std::ptrdiff_t>(std::min(static_cast<double>(in), std::ceil(centre + support)));
    double total = 0;
    std::vector<double> ws;
    for (std::ptrdiff_t j = lo; j < hi; ++j) {
      const double d = std::abs((static_cast<double>(j) + 0.5 - centre) / support);
      ws.push_back(d < 1 ? 1 - d : 0);
      total += ws.back();
    }
    std::size_t skip = 0;
    while (skip + 1 < ws.size() && ws[skip] == 0) ++skip;
    std::size_t n = ws.size();
    while (n > skip + 1 && ws[n - 1] == 0) --n;
    a.first[i] = static_cast<std::size_t>(lo) + skip;
    a.count[i] = std::min(n - skip, a.span);
    for (std::size_t k = 0; k < a.count[i]; ++k)
      a.w[i * a.span + k] = static_cast<float>(total > 0 ? ws[skip + k] / total : (k == 0 ? 1.0 : 0.0));
  }
  return a;
}

}  // namespace detail

// Resizes to out_h x out_w (bilinear, antialiased when shrinking).
inline void resize_image(const image8& in, std::size_t out_h, std::size_t out_w, image8& out) {
  require(out_h >= 1 && out_w >= 1, "resize_image: target ", out_h, " x ", out_w);
  if (in.height == out_h && in.width == out_w) {
    out = in;
    return;
  }
  const std::size_t C = in.channels;
  const auto wy = detail::resample_weights(in.height, out_h), wx = detail::resample_weights(in.width, out_w);
  std::vector<float> tmp(in.height * out_w * C);
  for (std::size_t y = 0; y < in.height; ++y)
    for (std::size_t x = 0; x < out_w; ++x)
      for (std::size_t c = 0; c < C; ++c) {
        float s = 0;
        for (std::size_t k = 0; k < wx.count[x]; ++k)
          s += wx.w[x * wx.span + k] * static_cast<float>(in.at(y, wx.first[x] + k, c));
        tmp[(y * out_w + x) * C + c] = s;
      }
  out.resize(C, out_h, out_w);
  for (std::size_t y = 0; y < out_h; ++y)
    for (std::size_t x = 0; x < out_w; ++x)
      for (std::size_t c = 0; c < C; ++c) {
        float s = 0;
        for (std::size_t k = 0; k < wy.count[y]; ++k) s += wy.w[y * wy.span + k] * tmp[((wy.first[y] + k) * out_w + x) * C + c];
        out.pixels[(y * out_w + x) * C + c] = static_cast<std::uint8_t>(std::clamp(std::lround(s), 0L, 255L));
      }
}

// Resizes so that the shorter edge is `edge` (aspect ratio kept, the longer
// edge rounded down), torchvision's Resize(int).
inline void resize_shorter_edge(const image8& in, std::size_t edge, image8& out) {
  std::size_t h = edge, w = edge;
  if (in.height < in.width)
    w = std::max<std::size_t>(1, in.width * edge / in.height);
  else
    h = std::max<std::size_t>(1, in.height * edge / in.width);
  resize_image(in, h, w, out);
}

// A crop position and flip for one image.
struct augmentation {
  std::size_t top = 0, left = 0;
  bool flip = false;
};

// The draw of image `image` in epoch `epoch` of a run seeded `seed`.
inline std::uint64_t augmentation_stream(std::uint64_t seed, std::uint64_t epoch, std::uint64_t image) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL ^ (epoch + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
                    (image + 1) * 0x94D049BB133111EBULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Applies the transform to one decoded image and writes the normalised
// C x H x W floats to `dst`; `training` draws the crop and flip from
// `stream`, evaluation crops the centre. `work` holds intermediate images.
template <class T>
void transform_image(const image8& decoded, const transform_options& t, bool training, std::uint64_t stream, T* dst,
                     image8 (&work)[2], const std::string& name) {
  const image8* img = &decoded;
  if (img->channels != t.channels) {
    convert_channels(*img, t.channels, work[0]);
    img = &work[0];
  }
  if (t.resize) {
    image8& o = img == &work[0] ? work[1] : work[0];
    resize_shorter_edge(*img, t.resize, o);
    img = &o;
  }
  require(img->height >= t.height && img->width >= t.width, name, ": image of ", img->height, " x ", img->width,
          " pixels", t.resize ? " after resizing" : "", " is smaller than the network input ", t.height, " x ", t.width,
          t.resize ? "" : " (set a resize)");
  augmentation a;
  a.top = (img->height - t.height) / 2;
  a.left = (img->width - t.width) / 2;
  if (training) {
    std::mt19937_64 gen(stream);
    if (t.random_crop) {
      a.top = static_cast<std::size_t>(gen() % (img->height - t.height + 1));
      a.left = static_cast<std::size_t>(gen() % (img->width - t.width + 1));
    }
    if (t.flip) a.flip = (gen() >> 63) != 0;
  }
  const std::size_t C = t.channels, H = t.height, W = t.width;
  for (std::size_t c = 0; c < C; ++c) {
    const float mean = t.mean[t.mean.size() == 1 ? 0 : c], sd = t.stddev[t.stddev.size() == 1 ? 0 : c];
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < W; ++x) {
        const std::size_t sx = a.left + (a.flip ? W - 1 - x : x);
        const std::uint8_t v = img->pixels[((a.top + y) * img->width + sx) * C + c];
        dst[(c * H + y) * W + x] = static_cast<T>((static_cast<float>(v) / 255.0f - mean) / sd);
      }
  }
}

// Decodes and transforms batches of a source.
template <class T>
class batch_loader {
 public:
  batch_loader(std::shared_ptr<const image_source> source, transform_options t, threads th = {})
      : src_(std::move(source)), t_(std::move(t)), threads_(th) {
    require(src_ != nullptr, "batch_loader: no source");
    require(t_.channels == 1 || t_.channels == 3, "batch_loader: ", t_.channels, " input channels (1 or 3)");
    require(t_.height >= 1 && t_.width >= 1, "batch_loader: network input ", t_.height, " x ", t_.width);
    require((t_.mean.size() == 1 || t_.mean.size() == t_.channels) &&
                (t_.stddev.size() == 1 || t_.stddev.size() == t_.channels),
            "batch_loader: ", t_.mean.size(), " means and ", t_.stddev.size(), " standard deviations for ",
            t_.channels, " channels");
    for (float s : t_.stddev) require(s > 0 && std::isfinite(s), "batch_loader: standard deviation ", s);
  }

  const transform_options& transform() const { return t_; }
  const image_source& source() const { return *src_; }
  shape4 input_shape(std::size_t batch) const { return shape4{batch, t_.channels, t_.height, t_.width}; }

  // Fills x with images ids[first, first + n) as (n, C, H, W). `training`
  // applies the random crop and flip of (seed, epoch, image id).
  void load(const std::vector<std::size_t>& ids, std::size_t first, std::size_t n, tensor<T>& x, bool training = false,
            std::uint64_t seed = 0, std::size_t epoch = 0) const {
    require(first + n <= ids.size(), "batch_loader::load: images ", first, "..", first + n, " of ", ids.size());
    x.resize(input_shape(n));
    const std::size_t per = t_.channels * t_.height * t_.width;
    parallel_for(static_cast<std::int64_t>(n), threads_, 1, [&](std::int64_t b) {
      thread_local image8 decoded, work[2];
      const std::size_t id = ids[first + static_cast<std::size_t>(b)];
      src_->decode(id, decoded);
      transform_image(decoded, t_, training, augmentation_stream(seed, epoch, id),
                      x.data() + static_cast<std::size_t>(b) * per, work, src_->describe(id));
    });
  }

  // Per-channel mean and standard deviation of pixels / 255 over images ids
  // after the evaluation transform without normalisation.
  std::pair<std::vector<float>, std::vector<float>> channel_statistics(const std::vector<std::size_t>& ids) const {
    transform_options plain = t_;
    plain.mean.assign(1, 0.0f);
    plain.stddev.assign(1, 1.0f);
    const batch_loader raw(src_, plain, threads_);
    const std::size_t C = t_.channels, P = t_.height * t_.width;
    std::vector<double> sum(C, 0.0), sq(C, 0.0);
    tensor<float> x;
    for (std::size_t b = 0; b < ids.size(); b += 256) {
      const std::size_t n = std::min<std::size_t>(256, ids.size() - b);
      raw.load(ids, b, n, x);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < C; ++c) {
          const float* p = x.data() + (i * C + c) * P;
          for (std::size_t k = 0; k < P; ++k) {
            sum[c] += p[k];
            sq[c] += static_cast<double>(p[k]) * p[k];
          }
        }
    }
    std::vector<float> mean(C), sd(C);
    const double count = static_cast<double>(ids.size() * P);
    for (std::size_t c = 0; c < C; ++c) {
      const double m = count > 0 ? sum[c] / count : 0.0;
      mean[c] = static_cast<float>(m);
      sd[c] = static_cast<float>(std::sqrt(std::max(count > 0 ? sq[c] / count - m * m : 1.0, 1e-12)));
    }
    return {mean, sd};
  }

 private:
  std::shared_ptr<const image_source> src_;
  transform_options t_;
  threads threads_;
};

}  // namespace nmhash::data
