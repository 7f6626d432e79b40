// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0),
// little-endian C-order arrays of bool, integer and floating types: what
// DeepHash-pytorch, DPSH and FAISS tooling save. Every malformed input is
// reported with the file name and what was expected versus found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

struct npy_array {
  // NumPy type kind ('b' bool, 'i' signed, 'u' unsigned, 'f' float) and
  // item size in bytes.
  char kind = 'f';
  std::size_t item_size = 4;
  std::vector<std::size_t> shape;
  std::vector<unsigned char> bytes;

  // Number of elements; throws when the shape's product overflows (never
  // for an array read_npy accepted: its payload is present in full).
  std::size_t elements() const {
    std::size_t n = 0;
    require(shape_product_fits(shape, n), "npy: shape ", shape_string(), " overflows a 64-bit size");
    return n;
  }
  std::size_t rows() const { return shape.empty() ? 1 : shape[0]; }
  std::size_t cols() const {
    std::size_t n = 0;
    require(shape_product_fits(std::vector<std::size_t>(shape.begin() + (shape.empty() ? 0 : 1), shape.end()), n),
            "npy: shape ", shape_string(), " overflows a 64-bit size");
    return n;
  }
  // NumPy's dtype name, e.g. "float32", "int8", "uint8", "bool".
  std::string dtype_name() const {
    if (kind == 'b') return "bool";
    std::string base = kind == 'f' ? "float" : kind == 'i' ? "int" : "uint";
    return base + std::to_string(8 * item_size);
  }
  std::string shape_string() const {
    std::string s = "(";
    for (std::size_t d = 0; d < shape.size(); ++d) {
      s += std::to_string(shape[d]);
      if (d + 1 < shape.size() || shape.size() == 1) s += ",";
      if (d + 1 < shape.size()) s += " ";
    }
    return s + ")";
  }

  // Element i converted to T.
  template <class T>
  T get(std::size_t i) const {
    const unsigned char* p = bytes.data() + i * item_size;
    switch (kind) {
      case 'b': return static_cast<T>(*p != 0);
      case 'f':
        if (item_size == 4) return static_cast<T>(load<float>(p));
        return static_cast<T>(load<double>(p));
      case 'i':
        switch (item_size) {
          case 1: return static_cast<T>(load<std::int8_t>(p));
          case 2: return static_cast<T>(load<std::int16_t>(p));
          case 4: return static_cast<T>(load<std::int32_t>(p));
          default: return static_cast<T>(load<std::int64_t>(p));
        }
      default:
        switch (item_size) {
          case 1: return static_cast<T>(load<std::uint8_t>(p));
          case 2: return static_cast<T>(load<std::uint16_t>(p));
          case 4: return static_cast<T>(load<std::uint32_t>(p));
          default: return static_cast<T>(load<std::uint64_t>(p));
        }
    }
  }

  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> v(elements());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = get<T>(i);
    return v;
  }

 private:
  template <class T>
  static T load(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
};

namespace detail {

inline std::string npy_header_value(const std::string& header, const std::string& key,
                                    const std::string& path) {
  const std::string quoted = "'" + key + "'";
  const auto k = header.find(quoted);
  require(k != std::string::npos, path, ": .npy header has no '", key, "' entry");
  auto p = header.find(':', k + quoted.size());
  require(p != std::string::npos, path, ": .npy header entry '", key, "' has no value");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  std::size_t e = p;
  if (p < header.size() && header[p] == '(') {
    e = header.find(')', p);
    require(e != std::string::npos, path, ": .npy header shape is not closed");
    return header.substr(p, e - p + 1);
  }
  if (p < header.size() && (header[p] == '\'' || header[p] == '"')) {
    e = header.find(header[p], p + 1);
    require(e != std::string::npos, path, ": .npy header value of '", key, "' is not closed");
    return header.substr(p + 1, e - p - 1);
  }
  while (e < header.size() && header[e] != ',' && header[e] != '}') ++e;
  std::string v = header.substr(p, e - p);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

template <class T>
constexpr char npy_kind() {
  if constexpr (std::is_same_v<T, bool>) return 'b';
  else if constexpr (std::is_floating_point_v<T>) return 'f';
  else if constexpr (std::is_signed_v<T>) return 'i';
  else return 'u';
}

}  // namespace detail

// Parses a .npy image held in memory; `name` (the file's path) prefixes every
// error. Sizes are checked against the bytes present before any allocation.
inline npy_array parse_npy(const unsigned char* file, std::size_t size, const std::string& name) {
  const std::string& path = name;
  const auto file_size = static_cast<std::uint64_t>(size);
  require(file_size >= 10, path, ": not a .npy file (", file_size,
          " bytes, too short for the header)");
  require(std::memcmp(file, "\x93NUMPY", 6) == 0, path,
          ": not a .npy file (missing the \\x93NUMPY magic string)");
  const int major = file[6];
  require(major >= 1 && major <= 3, path, ": unsupported .npy format version ", major, ".",
          int(file[7]));
  const int len_bytes = major == 1 ? 2 : 4;
  require(file_size >= 8u + static_cast<unsigned>(len_bytes), path, ": truncated .npy header");
  std::uint64_t header_len = 0;
  for (int i = len_bytes - 1; i >= 0; --i) header_len = header_len << 8 | file[8 + static_cast<std::size_t>(i)];
  const std::uint64_t data_offset = 8 + static_cast<std::uint64_t>(len_bytes) + header_len;
  require(data_offset <= file_size, path, ": truncated .npy header (header length field says ", header_len,
          " bytes, the file has ", file_size - 8 - static_cast<std::uint64_t>(len_bytes), " after it)");
  const std::string header(reinterpret_cast<const char*>(file) + 8 + len_bytes,
                           static_cast<std::size_t>(header_len));

  npy_array a;
  const std::string descr = detail::npy_header_value(header, "descr", path);
  require(descr.size() >= 3 && descr.size() <= 4, path, ": header field 'descr': unsupported dtype '", descr, "'");
  const char order = descr[0];
  a.kind = descr[1];
  std::uint64_t item_size = 0;
  require(parse_u64(descr.substr(2), item_size), path, ": header field 'descr': unsupported dtype '", descr, "'");
  a.item_size = static_cast<std::size_t>(item_size);
  require(a.kind == 'b' || a.kind == 'i' || a.kind == 'u' || a.kind == 'f', path,
          ": header field 'descr': unsupported dtype '", descr, "' (expected bool, integer or float)");
  require((a.kind == 'f' && (a.item_size == 4 || a.item_size == 8)) ||
              (a.kind == 'b' && a.item_size == 1) ||
              ((a.kind == 'i' || a.kind == 'u') &&
               (a.item_size == 1 || a.item_size == 2 || a.item_size == 4 || a.item_size == 8)),
          path, ": header field 'descr': unsupported dtype '", descr, "'");
  require(order == '<' || order == '|' || (order == '=' && a.item_size == 1), path,
          ": big-endian dtype '", descr, "' is not supported (save with a little-endian dtype)");
  const std::string fortran = detail::npy_header_value(header, "fortran_order", path);
  require(fortran == "False", path,
          ": Fortran-order array (fortran_order: ", fortran, "); save a C-order array "
          "(numpy.ascontiguousarray) instead");
  const std::string shape = detail::npy_header_value(header, "shape", path);
  require(shape.size() >= 2 && shape.front() == '(' && shape.back() == ')', path,
          ": header field 'shape': expected a tuple, found '", shape, "'");
  std::size_t p = 1;
  while (p < shape.size()) {
    while (p < shape.size() && (shape[p] == ' ' || shape[p] == ',')) ++p;
    if (p >= shape.size() || shape[p] == ')') break;
    std::size_t e = p;
    while (e < shape.size() && shape[e] >= '0' && shape[e] <= '9') ++e;
    require(e > p, path, ": header field 'shape': malformed tuple ", shape);
    std::uint64_t dim = 0;
    require(parse_u64(shape.substr(p, e - p), dim), path, ": header field 'shape': dimension ",
            shape.substr(p, e - p), " does not fit in 64 bits");
    require(a.shape.size() < 32, path, ": header field 'shape': more than 32 dimensions");
    a.shape.push_back(static_cast<std::size_t>(dim));
    p = e;
  }
  const std::uint64_t payload = file_size - data_offset;
  // As in NumPy, the nonzero dimensions and the item size multiply without
  // overflow even when a zero dimension leaves no data, so that every partial
  // product (rows() x cols() included) fits.
  std::size_t elements = 0, data_bytes = 0, extent = a.item_size;
  bool extent_fits = true;
  for (std::size_t d : a.shape) extent_fits = extent_fits && (d == 0 || mul_fits(extent, d, extent));
  require(extent_fits && shape_product_fits(a.shape, elements) && mul_fits(elements, a.item_size, data_bytes), path,
          ": header field 'shape': ", a.shape_string(), " of ", a.dtype_name(),
          " overflows a 64-bit size (the file has ", payload, " bytes of data)");
  require(payload >= data_bytes, path, ": truncated data: shape ", a.shape_string(), " of ", a.dtype_name(),
          " needs ", data_bytes, " bytes, file has ", payload);
  require(payload == data_bytes, path, ": ", payload - data_bytes,
          " unexpected trailing bytes after the data of shape ", a.shape_string());
  a.bytes.assign(file + data_offset, file + file_size);
  return a;
}

inline npy_array read_npy(const std::string& path) {
  const std::vector<unsigned char> file = read_file(path);
  return parse_npy(file.data(), file.size(), path);
}

// Writes a C-order little-endian .npy (version 1.0) into `f`, which the
// caller commits (alone, or with its partners in an atomic_group).
template <class T>
void write_npy(atomic_file& f, const T* data, const std::vector<std::size_t>& shape) {
  const std::string& path = f.path();
  static_assert(std::is_arithmetic_v<T>, "write_npy: arithmetic element types only");
  std::string sh = "(";
  std::size_t n = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    sh += std::to_string(shape[d]);
    if (d + 1 < shape.size() || shape.size() == 1) sh += ",";
    if (d + 1 < shape.size()) sh += " ";
    n = checked_mul(n, shape[d], path, ": write_npy: shape");
  }
  sh += ")";
  const char endian = sizeof(T) == 1 ? '|' : '<';
  std::string header = std::string("{'descr': '") + endian + detail::npy_kind<T>() +
                       std::to_string(sizeof(T)) + "', 'fortran_order': False, 'shape': " + sh +
                       ", }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  require(header.size() <= 0xFFFF, path, ": write_npy: a header of ", header.size(),
          " bytes does not fit the 1.0 format");
  const auto hl = static_cast<std::uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  const unsigned char len[2] = {static_cast<unsigned char>(hl & 0xFF),
                                static_cast<unsigned char>(hl >> 8)};
  f.write(len, 2);
  f.write(header.data(), header.size());
  f.write(data, checked_mul(n, sizeof(T), path, ": write_npy: data size"));
}

// Writes a C-order little-endian .npy (version 1.0) atomically.
template <class T>
void write_npy(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
  atomic_file f(path);
  write_npy(f, data, shape);
  f.commit();
}

}  // namespace nmhash::io
