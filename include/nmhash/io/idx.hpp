// Reader for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or
// plain (zlib reads both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include "nmhash/core/error.hpp"

namespace nmhash::io {

struct idx_array {
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> data;  // unsigned-byte payload
};

// Reads an IDX file of unsigned bytes (type code 0x08). `expect_dims` (if
// non-zero) is checked against the file's number of dimensions.
inline idx_array read_idx(const std::string& path, int expect_dims = 0) {
  gzFile f = gzopen(path.c_str(), "rb");
  require(f != nullptr, path, ": cannot open file");
  struct closer {
    gzFile f;
    ~closer() { gzclose(f); }
  } guard{f};
  auto read_exact = [&](void* dst, unsigned bytes, const char* what) {
    const int got = gzread(f, dst, bytes);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      nmhash::detail::fail(path, ": corrupt file while reading ", what, ": ", msg);
    }
    require(static_cast<unsigned>(got) == bytes, path, ": truncated ", what, " (expected ",
            bytes, " bytes, got ", got, ")");
  };
  unsigned char magic[4];
  read_exact(magic, 4, "IDX magic number");
  require(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file (bad magic number)");
  require(magic[2] == 0x08, path, ": IDX element type 0x", std::hex, int(magic[2]),
          " is not unsigned byte (0x08)");
  const int dims = magic[3];
  require(dims >= 1 && dims <= 4, path, ": IDX file with ", dims, " dimensions");
  require(expect_dims == 0 || dims == expect_dims, path, ": expected ", expect_dims,
          " dimensions, found ", dims);
  idx_array a;
  std::size_t total = 1;
  for (int d = 0; d < dims; ++d) {
    unsigned char b[4];
    read_exact(b, 4, "IDX dimension");
    const std::size_t s = std::size_t{b[0]} << 24 | std::size_t{b[1]} << 16 |
                          std::size_t{b[2]} << 8 | b[3];
    a.shape.push_back(s);
    total *= s;
  }
  require(total < (std::size_t{1} << 31), path, ": IDX payload of ", total, " bytes is too large");
  a.data.resize(total);
  if (total) read_exact(a.data.data(), static_cast<unsigned>(total), "IDX payload");
  unsigned char extra;
  require(gzread(f, &extra, 1) == 0, path, ": unexpected data after the IDX payload");
  return a;
}

}  // namespace nmhash::io
