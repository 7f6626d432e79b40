// Codes and labels in .npy files, in the forms public deep-hashing code
// saves them:
//  - codes: float32/float64 network outputs or +-1 codes (packed by sign,
//    sgn(0) = +1), +-1 int8, or packed uint8 bytes (numpy.packbits layout,
//    K = 8 x columns unless a smaller K is given);
//  - labels: a 1-D integer array (or N x 1) of class ids, or an N x C 0/1
//    matrix (multi-hot or one-hot, any numeric dtype or bool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "nmhash/codes/pack.hpp"
#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/retrieval/labels.hpp"

namespace nmhash::io {

// bits: the code length for packed uint8 input (0 = 8 x columns); ignored,
// except as a check, for the other dtypes.
// Codes from an array read from `path` (named in every error).
inline packed_codes codes_from_npy(const npy_array& a, const std::string& path, std::size_t bits = 0,
                                   bit_order order = bit_order::lsb_first) {
  require(a.shape.size() == 2, path, ": codes must be a 2-D array (N, K), found shape ",
          a.shape_string());
  const std::size_t n = a.shape[0], cols = a.shape[1];
  require(cols >= 1, path, ": codes have zero columns");
  if (a.kind == 'u' && a.item_size == 1) {
    require(cols <= bytes_for_bits(max_code_bits), path, ": packed uint8 codes with ", cols,
            " bytes per row exceed the supported K = ", max_code_bits, " bits");
    const std::size_t k = bits ? bits : 8 * cols;
    require(bytes_for_bits(k) == cols, path, ": packed uint8 codes of K = ", k, " bits need ",
            bytes_for_bits(k), " bytes per row, found ", cols);
    require(k <= max_code_bits, path, ": K = ", k, " exceeds the supported ", max_code_bits);
    return from_packed_bytes(a.bytes.data(), a.bytes.size(), n, k, order);
  }
  require(!bits || bits == cols, path, ": expected K = ", bits, " bits, found ", cols,
          " columns");
  require(cols <= max_code_bits, path, ": K = ", cols, " exceeds the supported ", max_code_bits);
  try {
    if (a.kind == 'f' && a.item_size == 4)
      return pack_signs(reinterpret_cast<const float*>(a.bytes.data()), n, cols);
    if (a.kind == 'f' && a.item_size == 8)
      return pack_signs(reinterpret_cast<const double*>(a.bytes.data()), n, cols);
    if (a.kind == 'i' && a.item_size == 1)
      return pack_pm1(reinterpret_cast<const std::int8_t*>(a.bytes.data()), n, cols);
  } catch (const error& e) {
    nmhash::detail::fail(path, ": ", e.what());
  }
  nmhash::detail::fail(path, ": unsupported dtype ", a.dtype_name(),
               " for codes (expected float32, float64, int8 +-1 or packed uint8)");
}

inline packed_codes load_codes_npy(const std::string& path, std::size_t bits = 0,
                                   bit_order order = bit_order::lsb_first) {
  return codes_from_npy(read_npy(path), path, bits, order);
}

// Labels from an array read from `path` (named in every error).
inline labels labels_from_npy(const npy_array& a, const std::string& path) {
  const bool column = a.shape.size() == 2 && a.shape[1] == 1;
  if (a.shape.size() == 1 || column) {
    require(a.kind == 'i' || a.kind == 'u', path, ": class-id labels must be integers, found ",
            a.dtype_name());
    std::vector<std::int32_t> ids(a.rows());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto v = a.get<std::int64_t>(i);
      require(v >= INT32_MIN && v <= INT32_MAX, path, ": class id ", v, " at row ", i,
              " does not fit in int32");
      ids[i] = static_cast<std::int32_t>(v);
    }
    return labels::single(std::move(ids));
  }
  require(a.shape.size() == 2, path,
          ": labels must be 1-D class ids or a 2-D 0/1 matrix, found shape ", a.shape_string());
  std::vector<std::uint8_t> m(a.elements());
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double v = a.get<double>(i);
    require(v == 0.0 || v == 1.0, path, ": multi-hot labels must be 0 or 1, found ", v,
            " at row ", i / a.shape[1], ", column ", i % a.shape[1]);
    m[i] = static_cast<std::uint8_t>(v);
  }
  return labels::multi_hot(m.data(), a.shape[0], a.shape[1]);
}

inline labels load_labels_npy(const std::string& path) { return labels_from_npy(read_npy(path), path); }

// int64 ids from a 1-D (or N x 1) integer array; unsigned ids above
// INT64_MAX are refused. expect: the number of ids wanted, or SIZE_MAX for
// any.
inline std::vector<std::int64_t> load_ids_npy(const std::string& path,
                                              std::size_t expect = static_cast<std::size_t>(-1)) {
  const auto a = read_npy(path);
  require(a.kind == 'i' || a.kind == 'u', path, ": ids must be integers, found dtype ", a.dtype_name());
  require(a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[1] == 1), path,
          ": ids must be a 1-D array, found shape ", a.shape_string());
  require(expect == static_cast<std::size_t>(-1) || a.rows() == expect, path, ": ", a.rows(), " ids for ", expect,
          " codes");
  std::vector<std::int64_t> ids(a.rows());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (a.kind == 'u' && a.item_size == 8)
      require(a.get<std::uint64_t>(i) <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), path,
              ": id ", i, " = ", a.get<std::uint64_t>(i), " does not fit int64");
    ids[i] = a.get<std::int64_t>(i);
  }
  return ids;
}

// Writes codes as packed uint8 bytes into `f` (by default FAISS's order,
// numpy.packbits(..., bitorder="little")).
inline void write_codes_npy(atomic_file& f, const packed_codes& c, bit_order order = bit_order::lsb_first) {
  std::vector<std::uint8_t> bytes(c.size() * bytes_for_bits(c.bits()));
  to_packed_bytes(c, bytes.data(), order);
  write_npy(f, bytes.data(), {c.size(), bytes_for_bits(c.bits())});
}

// Saves codes as packed uint8 bytes (by default FAISS's order), atomically.
inline void save_codes_npy(const std::string& path, const packed_codes& c,
                           bit_order order = bit_order::lsb_first) {
  atomic_file f(path);
  write_codes_npy(f, c, order);
  f.commit();
}

}  // namespace nmhash::io
