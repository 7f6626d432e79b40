// Hand-made malformed inputs that once threatened the parsers (sizes that
// overflow, numbers of the wrong JSON type, nesting deep enough to exhaust
// a recursive walk), shared by the seed generator and the regression tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nmhash_fuzz {

// A version-1.0 .npy image: `dict` padded as numpy pads it, then `payload`.
inline std::string npy_image(const std::string& dict, const std::string& payload) {
  std::string h = dict;
  const std::size_t unpadded = 10 + h.size() + 1;
  h.append((64 - unpadded % 64) % 64, ' ');
  h.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(h.size() & 0xFF));
  out.push_back(static_cast<char>(h.size() >> 8));
  return out + h + payload;
}

// A safetensors image: the 8-byte little-endian length of `header`, the
// header, then `data`.
inline std::string safetensors_image(const std::string& header, const std::string& data) {
  std::string out;
  const auto n = static_cast<std::uint64_t>(header.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + data;
}

// '|u1' of shape (2^58, 512): 2^67 bytes declared, none present (128 bytes).
inline std::string npy_u1_shape_overflow() {
  return npy_image("{'descr': '|u1', 'fortran_order': False, 'shape': (288230376151711744, 512), }", "");
}

// A first dimension of 2^63, one past the largest signed 64-bit value.
inline std::string npy_dim_2_63() {
  return npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808, 128), }", "");
}

// A 23-digit dimension, beyond any 64-bit integer.
inline std::string npy_dim_23_digits() {
  return npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (12345678901234567890123, 4), }",
                   std::string(16, '\0'));
}

// Zero elements, but nonzero dimensions whose product overflows (found by
// fuzz_npy: rows() x cols() of the accepted array overflowed).
inline std::string npy_zero_dim_overflow() {
  return npy_image("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 761517117441711744, 76151711744, 512), }",
                   "");
}

// 9 bytes: an IDX header declaring 3 dimensions, the first 2^32 - 1 long,
// the others cut off.
inline std::string idx_9_bytes_huge_3d() { return std::string("\0\0\x08\x03\xff\xff\xff\xff\xff", 9); }

// A complete 3-D IDX header of (2^32 - 1)^3 bytes, with no payload.
inline std::string idx_huge_3d_header() {
  return std::string("\0\0\x08\x03", 4) + std::string(12, '\xff');
}

// A 1-D IDX header declaring a 50 MB payload and holding none (found by
// fuzz_idx: gzip-wrapped, a few dozen bytes made the reader allocate 1 MiB).
inline std::string idx_declares_50mb() { return std::string("\0\0\x08\x01\x03\0\0\x54", 8); }

// data_offsets [0, 9.18e21]: a JSON float, and beyond any 64-bit offset.
inline std::string safetensors_float_offsets() {
  return safetensors_image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9.18e21]}})", std::string(8, '\0'));
}

inline std::string safetensors_negative_shape() {
  return safetensors_image(R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}})", std::string(8, '\0'));
}

inline std::string safetensors_float_shape() {
  return safetensors_image(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", std::string(8, '\0'));
}

// `tensors` tensors all over the same `data_bytes` bytes (found by
// fuzz_safetensors: 64 KiB that way made the parser copy 13 MB).
inline std::string safetensors_overlapping(std::size_t tensors, std::size_t data_bytes) {
  std::string header = "{";
  for (std::size_t i = 0; i < tensors; ++i)
    header += (i ? ",\"" : "\"") + std::to_string(i) + R"(":{"dtype":"F32","shape":[)" +
              std::to_string(data_bytes / 4) + R"(],"data_offsets":[0,)" + std::to_string(data_bytes) + "]}";
  return safetensors_image(header + "}", std::string(data_bytes, '\0'));
}

// A header of `depth` nested arrays, closed or not.
inline std::string safetensors_deep_header(std::size_t depth, bool closed) {
  return safetensors_image(std::string(depth, '[') + (closed ? std::string(depth, ']') : std::string()), "");
}

// A tensor whose `field` ("shape" or "data_offsets") holds an array nested
// `depth` deep.
inline std::string safetensors_deep_field(const std::string& field, std::size_t depth) {
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  const std::string shape = field == "shape" ? "[" + deep + "]" : "[1]";
  const std::string offsets = field == "data_offsets" ? deep : "[0,4]";
  return safetensors_image(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}",
                           std::string(4, '\0'));
}

}  // namespace nmhash_fuzz
