// libFuzzer harness for image files: data::decode_image (TurboJPEG, libpng)
// on arbitrary bytes. Only nmhash::error may leave it; an accepted image
// holds its declared pixels within the decode budget; and no input makes
// the decoders allocate more than its size can justify (the declared size
// is checked against the budget and against what the file can hold before
// any pixel is allocated).
#include <cstddef>
#include <cstdint>
#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/data/image.hpp"

#include "harness.hpp"

namespace {

// Heap the decoders may hold for `size` input bytes: the decoded image (at
// most png_expansion bytes per input byte, plus 64 KiB) and the decoders'
// own state.
constexpr std::size_t heap_bound(std::size_t size) {
  return nmhash::data::detail::png_expansion * size + (8u << 20);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto img = nmhash_fuzz::parse_bounded(
      [&] {
        nmhash::data::image8 out;
        nmhash::data::decode_image(data, size, "fuzz.image", out);
        return out;
      },
      heap_bound(size));
  if (!img) return 0;
  nmhash_fuzz::check(img->channels == 1 || img->channels == 3);
  nmhash_fuzz::check(img->height >= 1 && img->width >= 1);
  nmhash_fuzz::check(img->height * img->width <= nmhash::data::max_image_pixels());
  nmhash_fuzz::check(img->pixels.size() == img->channels * img->height * img->width);
  return 0;
}
