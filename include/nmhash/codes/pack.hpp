// Conversions into and out of packed_codes: real-valued network outputs by
// sign, +-1 int8 codes, and packed uint8 bytes in the layout of
// numpy.packbits and FAISS binary indexes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/device.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

// Order of the bits inside each byte of a packed uint8 code.
//  - msb_first: bit j is bit (7 - j % 8) of byte j / 8. numpy.packbits'
//    default (bitorder="big").
//  - lsb_first: bit j is bit (j % 8) of byte j / 8. numpy.packbits with
//    bitorder="little", and faiss::real_to_binary / fvecs2bitvecs.
// nmhash's one default, everywhere bytes are read or written (this header,
// .npy codes, the command-line tools, the Python module, index files), is
// lsb_first: FAISS's layout. Hamming distances do not depend on the order
// when both sides share it (it permutes bits the same way in every code);
// codes of one order searched against codes of the other give wrong
// neighbours, and single-bit operations (leave-one-bit-out MAP, bit
// selection) address other bits.
enum class bit_order { msb_first, lsb_first };

// Bytes per code of K bits in the packed uint8 layout.
constexpr std::size_t bytes_for_bits(std::size_t bits) { return (bits + 7) / 8; }

// Codes from real-valued outputs x (n rows of k values, row-major, host
// memory) by sgn with sgn(0) = +1 (the protocol's rule); NaN is rejected.
// Device: nmhash::cpu, or nmhash::cuda with <nmhash/cuda/api.cuh> (nvcc).
template <class Device = cpu, class T>
packed_codes pack_signs(const T* x, std::size_t n, std::size_t k) {
  static_assert(std::is_same_v<Device, cpu>,
                "pack_signs<nmhash::cuda> is declared in <nmhash/cuda/api.cuh>");
  packed_codes c(n, k);
  for (std::size_t i = 0; i < n; ++i) {
    const T* xi = x + i * k;
    std::uint64_t* w = c.row(i);
    for (std::size_t j = 0; j < k; ++j) {
      const T v = xi[j];
      require(v == v, "pack_signs: NaN at row ", i, ", bit ", j);
      w[j / 64] |= std::uint64_t{v >= T(0)} << (j % 64);
    }
  }
  return c;
}

// Codes from +-1 int8 values (n rows of k values); any other value throws.
inline packed_codes pack_pm1(const std::int8_t* x, std::size_t n, std::size_t k) {
  packed_codes c(n, k);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int8_t* xi = x + i * k;
    std::uint64_t* w = c.row(i);
    for (std::size_t j = 0; j < k; ++j) {
      const int v = xi[j];
      require(v == 1 || v == -1, "pack_pm1: value ", v, " at row ", i, ", bit ", j,
              " (expected +1 or -1)");
      w[j / 64] |= std::uint64_t{v > 0} << (j % 64);
    }
  }
  return c;
}

// Writes codes as +-1 int8 values, n rows of K.
inline void unpack_pm1(const packed_codes& c, std::int8_t* out) {
  const std::size_t k = c.bits();
  for (std::size_t i = 0; i < c.size(); ++i)
    for (std::size_t j = 0; j < k; ++j) out[i * k + j] = c.bit(i, j) ? 1 : -1;
}

namespace detail {
inline std::uint8_t reverse_byte(std::uint8_t b) {
  b = static_cast<std::uint8_t>((b & 0xF0u) >> 4 | (b & 0x0Fu) << 4);
  b = static_cast<std::uint8_t>((b & 0xCCu) >> 2 | (b & 0x33u) << 2);
  b = static_cast<std::uint8_t>((b & 0xAAu) >> 1 | (b & 0x55u) << 1);
  return b;
}
}  // namespace detail

// Codes from packed bytes: n rows of bytes_for_bits(k) bytes. Padding bits
// of the last byte (those beyond k) are ignored. The caller guarantees the
// n x bytes_for_bits(k) bytes; the overload below checks a buffer length.
inline packed_codes from_packed_bytes(const std::uint8_t* bytes, std::size_t n, std::size_t k,
                                      bit_order order = bit_order::lsb_first) {
  packed_codes c(n, k);
  const std::size_t nb = bytes_for_bits(k);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* src = bytes + i * nb;
    std::uint64_t* w = c.row(i);
    for (std::size_t b = 0; b < nb; ++b) {
      const std::uint8_t v = order == bit_order::lsb_first ? src[b] : detail::reverse_byte(src[b]);
      w[b / 8] |= std::uint64_t{v} << (8 * (b % 8));
    }
  }
  c.clear_padding();
  return c;
}

// The same from a buffer of `size` bytes, which must be exactly n rows of
// bytes_for_bits(k) bytes.
inline packed_codes from_packed_bytes(const std::uint8_t* bytes, std::size_t size, std::size_t n, std::size_t k,
                                      bit_order order) {
  require(k >= 1 && k <= max_code_bits, "from_packed_bytes: code length K = ", k, " is outside [1, ",
          max_code_bits, "]");
  const std::size_t need = checked_mul(n, bytes_for_bits(k), "from_packed_bytes: n x bytes per code");
  if (size != need)
    detail::fail("from_packed_bytes: ", n, " codes of K = ", k, " bits need ", n, " x ", bytes_for_bits(k), " = ",
                 need, " bytes, the buffer holds ", size);
  if (bytes == nullptr && size != 0) detail::fail("from_packed_bytes: null buffer");
  return from_packed_bytes(bytes, n, k, order);
}

// Writes codes as packed bytes, n rows of bytes_for_bits(K) bytes, padding
// bits zero.
inline void to_packed_bytes(const packed_codes& c, std::uint8_t* out,
                            bit_order order = bit_order::lsb_first) {
  const std::size_t nb = bytes_for_bits(c.bits());
  for (std::size_t i = 0; i < c.size(); ++i) {
    const std::uint64_t* w = c.row(i);
    std::uint8_t* dst = out + i * nb;
    for (std::size_t b = 0; b < nb; ++b) {
      const auto v = static_cast<std::uint8_t>(w[b / 8] >> (8 * (b % 8)));
      dst[b] = order == bit_order::lsb_first ? v : detail::reverse_byte(v);
    }
  }
}

}  // namespace nmhash
