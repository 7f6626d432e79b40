// Decoded 8-bit images and the JPEG and PNG decoders behind them:
// libjpeg-turbo's TurboJPEG API for JPEG and libpng's simplified API for
// PNG (both Debian packages; link nmhash::image). Chosen by measurement
// (bench/bench_decoders.cpp, docs/datasets.md): on a 256 x 256 RGB image,
// 1 core, TurboJPEG decodes 1.6x and libpng 1.4x as many images/s as
// stb_image.
//
// A decoded image (image8, data/dataset.hpp) keeps the file's colour kind: grey (1 channel) or RGB (3,
// interleaved, row-major H x W x C). Alpha is removed by libpng's
// simplified API (composited onto black), palette PNGs become RGB and
// 16-bit PNGs 8-bit. A JPEG that libjpeg-turbo decodes only with a warning
// (truncated or corrupt data) is refused, as PIL refuses a truncated image.
#pragma once

#include <png.h>
#include <turbojpeg.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::data {

enum class image_format { unknown, jpeg, png };

inline image_format sniff_image(const std::uint8_t* p, std::size_t n) {
  static const std::uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 8 && std::memcmp(p, png_magic, 8) == 0) return image_format::png;
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return image_format::jpeg;
  return image_format::unknown;
}

namespace detail {

// The most decoded bytes a compressed file of `size` bytes can hold: deflate
// expands at most 1032:1 and a 1-bit palette PNG becomes 24 bits a pixel;
// JPEG's entropy coding needs at least a bit or two per 8 x 8 block.
inline constexpr std::size_t png_expansion = 1032 * 24, jpeg_expansion = 4096;

// The declared size, checked before any pixel is allocated: against the
// decode budget (max_image_pixels()) and against what a file of `size`
// bytes can hold (`expansion` decoded bytes a byte, plus 64 KiB).
inline void check_image_size(std::size_t w, std::size_t h, std::size_t channels, std::size_t size,
                             std::size_t expansion, const std::string& name) {
  require(w >= 1 && h >= 1, name, ": image of ", w, " x ", h, " pixels");
  std::size_t px = 0, bytes = 0, most = 0;
  const std::size_t limit = max_image_pixels();
  require(mul_fits(w, h, px) && px <= limit, name, ": image of ", w, " x ", h, " pixels exceeds the decode limit of ",
          limit, " pixels (--max-image-pixels, data::set_max_image_pixels() raise it)");
  if (!mul_fits(size, expansion, most) || !add_fits(most, std::size_t{1} << 16, most)) return;
  require(mul_fits(px, channels, bytes) && bytes <= most, name, ": declares ", w, " x ", h, " pixels (", bytes,
          " bytes decoded) in a file of ", size, " bytes, more than such a file can hold; refused before decoding");
}

// out.resize with the image named when memory runs out.
inline void allocate(image8& out, std::size_t c, std::size_t h, std::size_t w, const std::string& name) {
  try {
    out.resize(c, h, w);
  } catch (const std::bad_alloc&) {
    nmhash::detail::fail(name, ": cannot allocate ", c, " x ", h, " x ", w, " bytes for the decoded image");
  }
}

inline void decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name, image8& out) {
  require(size <= static_cast<std::size_t>(~0UL), name, ": JPEG file too large");
  struct handle {
    tjhandle h = tjInitDecompress();
    ~handle() {
      if (h) tjDestroy(h);
    }
  } tj;
  require(tj.h != nullptr, name, ": cannot start the JPEG decoder");
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, data, static_cast<unsigned long>(size), &w, &h, &subsamp, &colorspace) != 0)
    nmhash::detail::fail(name, ": not a readable JPEG (", tjGetErrorStr2(tj.h), ")");
  const bool grey = colorspace == TJCS_GRAY;
  check_image_size(static_cast<std::size_t>(w), static_cast<std::size_t>(h), grey ? 1 : 3, size, jpeg_expansion, name);
  require(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, name,
          ": CMYK JPEG images are not supported (convert to RGB)");
  allocate(out, grey ? 1 : 3, static_cast<std::size_t>(h), static_cast<std::size_t>(w), name);
  if (tjDecompress2(tj.h, data, static_cast<unsigned long>(size), out.pixels.data(), w, 0, h,
                    grey ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT) != 0)
    nmhash::detail::fail(name, ": corrupt JPEG (", tjGetErrorStr2(tj.h), ")");
}

inline void decode_png(const std::uint8_t* data, std::size_t size, const std::string& name, image8& out) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  struct guard {
    png_image* p;
    ~guard() { png_image_free(p); }
  } g{&im};
  if (!png_image_begin_read_from_memory(&im, data, size))
    nmhash::detail::fail(name, ": not a readable PNG (", im.message, ")");
  const bool colour = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
  check_image_size(im.width, im.height, colour ? 3 : 1, size, png_expansion, name);
  im.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  allocate(out, colour ? 3 : 1, im.height, im.width, name);
  if (!png_image_finish_read(&im, nullptr, out.pixels.data(), 0, nullptr))
    nmhash::detail::fail(name, ": corrupt PNG (", im.message, ")");
}

}  // namespace detail

// Decodes a JPEG or PNG file held in memory; `name` names it in errors.
inline void decode_image(const std::uint8_t* data, std::size_t size, const std::string& name, image8& out) {
  switch (sniff_image(data, size)) {
    case image_format::jpeg:
      detail::decode_jpeg(data, size, name, out);
      return;
    case image_format::png:
      detail::decode_png(data, size, name, out);
      return;
    default:
      nmhash::detail::fail(name, ": not a JPEG or PNG file (", size < 8 ? "only " : "", size < 8 ? std::to_string(size) : "",
                           size < 8 ? " bytes" : "unknown signature", ")");
  }
}

inline void load_image(const std::string& path, image8& out) {
  const std::vector<unsigned char> bytes = io::read_file(path);
  decode_image(bytes.data(), bytes.size(), path, out);
}

}  // namespace nmhash::data
