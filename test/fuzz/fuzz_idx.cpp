// libFuzzer harness for the IDX parser: the input as it is (gzip when it
// starts with the gzip magic, up to max_raw_gzip bytes) and wrapped in a
// gzip stream, which must be read exactly as the plain bytes are. Only nmhash::error may leave the
// library, and no input may make it hold more heap than its size justifies.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zlib.h>

#include "nmhash/core/error.hpp"
#include "nmhash/io/idx.hpp"

#include "harness.hpp"

namespace {

using nmhash_fuzz::check;

// Heap the parser may hold for `size` input bytes: inflated data (deflate
// expands at most 1032-fold) in a buffer grown by doubling (old and new
// buffer live at once while it grows), plus zlib's state.
constexpr std::size_t heap_bound(std::size_t size) { return 4 * 1032 * size + (256u << 10); }

std::optional<nmhash::io::idx_array> parse(const unsigned char* p, std::size_t n, const std::string& name) {
  nmhash_fuzz::heap_peak heap;
  std::optional<nmhash::io::idx_array> out;
  try {
    out = nmhash::io::parse_idx(p, n, name, 0);
  } catch (const nmhash::error&) {
  }
  heap.stop();
  check(heap.bytes() <= heap_bound(n));
  return out;
}

void check_accepted(const nmhash::io::idx_array& a) {
  check(a.shape.size() >= 1 && a.shape.size() <= 4);
  std::size_t total = 1;
  for (std::size_t s : a.shape) check(!__builtin_mul_overflow(total, s, &total));
  check(total == a.data.size());
  check(total <= std::size_t{1} << 31);
}

// Raw gzip inputs are parsed up to this size. A deflate stream expands up
// to 1032-fold, and a mutated stream past this size spends the execution
// inflating megabytes, not in the parser's logic (test_io.cpp reads a
// stream inflating past the reader's 1 MiB step).
constexpr std::size_t max_raw_gzip = 512;

// `in` as one gzip member (fast compression with a small window: the point
// is the reader).
std::vector<unsigned char> gzip(const unsigned char* in, std::size_t n) {
  z_stream zs{};
  check(deflateInit2(&zs, 1, Z_DEFLATED, 16 + 9, 1, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<unsigned char> out(deflateBound(&zs, static_cast<uLong>(n)) + 64);
  zs.next_in = const_cast<unsigned char*>(in);
  zs.avail_in = static_cast<uInt>(n);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  check(rc == Z_STREAM_END);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool gz_magic = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  std::optional<nmhash::io::idx_array> plain;
  if (!gz_magic || size <= max_raw_gzip) plain = parse(data, size, "fuzz.idx");
  if (plain) check_accepted(*plain);
  const std::vector<unsigned char> z = gzip(data, size);
  const auto wrapped = parse(z.data(), z.size(), "fuzz.idx.gz");
  if (wrapped) check_accepted(*wrapped);
  if (!gz_magic) {
    check(plain.has_value() == wrapped.has_value());
    if (plain) {
      check(plain->shape == wrapped->shape);
      check(plain->data == wrapped->data);
    }
  }
  return 0;
}
