// Reader for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or
// plain. The declared shape is overflow-checked and never trusted for an
// allocation: the payload is read (and inflated) in bounded chunks, so a
// short or lying file costs no more memory than the bytes it really holds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

struct idx_array {
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> data;  // unsigned-byte payload
};

namespace detail {

// The decompressed bytes of a gzip stream (one or more members), at most
// `limit` of them: reading stops one byte past the limit, so the caller can
// tell "more than declared" from "exactly as declared".
inline std::vector<std::uint8_t> gunzip(const unsigned char* in, std::size_t size, std::size_t limit,
                                        const std::string& path) {
  std::vector<std::uint8_t> out;
  z_stream zs{};
  require(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, path, ": cannot initialise zlib");
  struct ender {
    z_stream* z;
    ~ender() { inflateEnd(z); }
  } guard{&zs};
  std::size_t consumed = 0;
  constexpr std::size_t max_chunk = std::size_t{1} << 20;
  while (true) {
    const std::size_t in_now = std::min<std::size_t>(size - consumed, 1u << 30);
    zs.next_in = const_cast<unsigned char*>(in + consumed);
    zs.avail_in = static_cast<uInt>(in_now);
    // The buffer grows with the bytes the stream really inflates to (at most
    // doubling, from 4 KiB), not with the size the header declares.
    const std::size_t chunk = std::min(max_chunk, std::max<std::size_t>(out.size(), 4096));
    const std::size_t want = std::min(chunk, limit + 1 - std::min(out.size(), limit + 1));
    if (want == 0) break;
    const std::size_t old = out.size();
    out.resize(old + want);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(want);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + (want - zs.avail_out));
    consumed += in_now - zs.avail_in;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (as gzip itself allows).
      if (consumed == size) break;
      require(inflateReset(&zs) == Z_OK, path, ": cannot reset zlib");
      continue;
    }
    if (rc == Z_BUF_ERROR && consumed == size)
      nmhash::detail::fail(path, ": truncated gzip stream (", out.size(), " bytes inflated)");
    require(rc == Z_OK || rc == Z_BUF_ERROR, path, ": corrupt gzip stream: ",
            zs.msg ? zs.msg : "inflate error ", zs.msg ? "" : std::to_string(rc));
  }
  return out;
}

}  // namespace detail

namespace detail {

// The payload can never exceed 2^31 bytes (the reader's limit).
inline constexpr std::size_t max_idx_payload = std::size_t{1} << 31;

struct idx_header {
  std::vector<std::size_t> shape;
  std::size_t bytes = 0;    // magic number and dimensions
  std::size_t payload = 0;  // product of the dimensions
};

// The magic number and dimensions at the start of p[0, n), validated.
inline idx_header read_idx_header(const unsigned char* p, std::size_t n, const std::string& path, int expect_dims) {
  require(n >= 4, path, ": truncated IDX magic number (", n, " bytes)");
  require(p[0] == 0 && p[1] == 0, path, ": not an IDX file (bad magic number)");
  require(p[2] == 0x08, path, ": IDX element type 0x", std::hex, int(p[2]),
          " is not unsigned byte (0x08)");
  const int dims = p[3];
  require(dims >= 1 && dims <= 4, path, ": IDX file with ", dims, " dimensions");
  require(expect_dims == 0 || dims == expect_dims, path, ": expected ", expect_dims,
          " dimensions, found ", dims);
  idx_header h;
  h.bytes = 4 + 4 * static_cast<std::size_t>(dims);
  require(n >= h.bytes, path, ": truncated IDX dimensions (", dims, " declared, ", (n - 4) / 4,
          " present)");
  h.payload = 1;
  for (int d = 0; d < dims; ++d) {
    const unsigned char* b = p + 4 + 4 * d;
    const std::size_t s = std::size_t{b[0]} << 24 | std::size_t{b[1]} << 16 | std::size_t{b[2]} << 8 | b[3];
    h.shape.push_back(s);
    require(mul_fits(h.payload, s, h.payload) && h.payload <= max_idx_payload, path, ": IDX dimension ", d,
            " makes the payload larger than ", max_idx_payload, " bytes");
  }
  return h;
}

}  // namespace detail

// Parses an IDX image held in memory (plain, or gzip when it starts with
// the gzip magic). `expect_dims` (if non-zero) is checked against the
// file's number of dimensions; `name` prefixes every error.
inline idx_array parse_idx(const unsigned char* file, std::size_t size, const std::string& name,
                           int expect_dims = 0) {
  const std::string& path = name;
  const bool gz = size >= 2 && file[0] == 0x1f && file[1] == 0x8b;
  std::vector<std::uint8_t> inflated;
  const unsigned char* p = file;
  std::size_t n = size;
  detail::idx_header h;
  if (gz) {
    // The header first, then no more than it declares (plus one byte to
    // detect trailing data): a small file cannot inflate into gigabytes.
    inflated = detail::gunzip(file, size, 4 + 4 * 4, path);
    h = detail::read_idx_header(inflated.data(), inflated.size(), path, expect_dims);
    inflated = detail::gunzip(file, size, h.bytes + h.payload, path);
    p = inflated.data();
    n = inflated.size();
  } else {
    h = detail::read_idx_header(p, n, path, expect_dims);
  }
  const std::size_t present = n - h.bytes;
  require(present >= h.payload, path, ": truncated IDX payload (expected ", h.payload, " bytes, got ", present, ")");
  require(present == h.payload, path, ": unexpected data after the IDX payload (", present - h.payload,
          " extra bytes)");
  idx_array a;
  a.shape = std::move(h.shape);
  a.data.assign(p + h.bytes, p + n);
  return a;
}

// Reads an IDX file of unsigned bytes (type code 0x08), gzip-compressed or
// plain.
inline idx_array read_idx(const std::string& path, int expect_dims = 0) {
  const std::vector<unsigned char> file = read_file(path);
  return parse_idx(file.data(), file.size(), path, expect_dims);
}

}  // namespace nmhash::io
