// Weights in the safetensors format (https://huggingface.co/docs/safetensors),
// readable by PyTorch's safetensors.torch.load_file: an 8-byte little-endian
// header length, a JSON header mapping each tensor name to its dtype, shape
// and byte range, then the raw little-endian data. Written atomically;
// malformed, truncated or mismatching files are reported with the file and
// tensor name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

// One named tensor: float32 or float64 values with a shape (or int64 ones:
// PyTorch's batch-norm counter num_batches_tracked).
struct named_tensor {
  std::string dtype;  // "F32", "F64", or "I64" as read
  std::vector<std::size_t> shape;
  std::vector<unsigned char> bytes;

  // Number of values; throws when the shape's product overflows (never for
  // a tensor load_safetensors accepted: its bytes are present in full).
  std::size_t elements() const {
    std::size_t n = 0;
    require(shape_product_fits(shape, n), "safetensors: shape ", nlohmann::json(shape).dump(),
            " overflows a 64-bit size");
    return n;
  }
  template <class T>
  static named_tensor from(const T* data, std::vector<std::size_t> shape) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int64_t>,
                  "F32, F64 or I64 only");
    named_tensor t;
    t.dtype = std::is_same_v<T, float> ? "F32" : std::is_same_v<T, double> ? "F64" : "I64";
    t.shape = std::move(shape);
    t.bytes.resize(checked_mul(t.elements(), sizeof(T), "safetensors: tensor size"));
    if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
    return t;
  }
  // Copies the values into out (n elements), converting F32 <-> F64 (and
  // I64 to either).
  template <class T>
  void copy_to(T* out, std::size_t n) const {
    require(n == elements(), "safetensors: tensor has ", elements(), " values, expected ", n);
    if (dtype == "I64") {
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v;
        std::memcpy(&v, bytes.data() + 8 * i, 8);
        out[i] = static_cast<T>(v);
      }
    } else if (dtype == "F32") {
      for (std::size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        out[i] = static_cast<T>(v);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, bytes.data() + 8 * i, 8);
        out[i] = static_cast<T>(v);
      }
    }
  }
};

using tensor_map = std::map<std::string, named_tensor>;

// Files nmhash writes carry a CRC-32 (zlib's) of their content in the
// metadata field below: every tensor's name, dtype, shape and offsets,
// every other metadata field, and the data. A reader refuses a file whose
// content does not match it (a flipped bit anywhere but in this field),
// naming the file; files without it (PyTorch's) are read as they are. The
// field is not returned with the metadata.
inline constexpr const char* checksum_field = "nmhash_crc32";

namespace detail {

// One tensor's entry of the header: name, dtype, shape, data offsets.
using tensor_entries =
    std::vector<std::tuple<std::string, std::string, std::vector<std::size_t>, std::uint64_t, std::uint64_t>>;

inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (bytes > 0) {
    const std::size_t step = std::min<std::size_t>(bytes, 1u << 30);
    crc = static_cast<std::uint32_t>(::crc32(crc, p, static_cast<uInt>(step)));
    p += step;
    bytes -= step;
  }
  return crc;
}

// The checksum of a file's description (tensors by name with dtype, shape
// and data offsets; metadata but the checksum) and data section.
inline std::uint32_t safetensors_checksum(const tensor_entries& entries,
    const std::map<std::string, std::string>& metadata, const unsigned char* data, std::size_t data_size) {
  std::string text;
  for (const auto& [name, dtype, shape, begin, end] : entries) {
    text += name + '\0' + dtype + '\0';
    for (const auto d : shape) text += std::to_string(d) + ',';
    text += '\0' + std::to_string(begin) + '\0' + std::to_string(end) + '\n';
  }
  for (const auto& [k, v] : metadata)
    if (k != checksum_field) text += k + '\0' + v + '\n';
  std::uint32_t crc = crc32_update(static_cast<std::uint32_t>(::crc32(0, nullptr, 0)), text.data(), text.size());
  return crc32_update(crc, data, data_size);
}

inline std::string hex32(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

}  // namespace detail

// Writes the tensors (and string metadata) into `f`, which the caller
// commits (alone, or with its partners in an atomic_group).
inline void write_safetensors(atomic_file& f, const tensor_map& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const std::string& path = f.path();
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  detail::tensor_entries entries;
  for (const auto& [name, t] : tensors) {
    require(t.dtype == "F32" || t.dtype == "F64" || t.dtype == "I64", path, ": tensor '", name, "' has dtype ",
            t.dtype);
    require(t.bytes.size() == t.elements() * (t.dtype == "F32" ? 4 : 8), path, ": tensor '", name,
            "' holds ", t.bytes.size(), " bytes for shape of ", t.elements(), " values");
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    entries.emplace_back(name, t.dtype, t.shape, offset, offset + t.bytes.size());
    offset += t.bytes.size();
  }
  // The data section is the tensors back to back, as written below.
  std::uint32_t crc = detail::safetensors_checksum(entries, metadata, nullptr, 0);
  for (const auto& [name, t] : tensors) crc = detail::crc32_update(crc, t.bytes.data(), t.bytes.size());
  std::map<std::string, std::string> meta = metadata;
  meta[checksum_field] = detail::hex32(crc);
  header["__metadata__"] = meta;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  f.write(len, 8);
  f.write(text.data(), text.size());
  for (const auto& [name, t] : tensors) f.write(t.bytes.data(), t.bytes.size());
}

// Writes the tensors (and string metadata) atomically.
inline void save_safetensors(const std::string& path, const tensor_map& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  atomic_file f(path);
  write_safetensors(f, tensors, metadata);
  f.commit();
}

struct safetensors_file {
  tensor_map tensors;
  std::map<std::string, std::string> metadata;

  const named_tensor& at(const std::string& name, const std::vector<std::size_t>& shape,
                         const std::string& path) const {
    const auto it = tensors.find(name);
    require(it != tensors.end(), path, ": no tensor named '", name, "'");
    require(it->second.shape == shape, path, ": tensor '", name, "' has shape ",
            nlohmann::json(it->second.shape).dump(), ", expected ", nlohmann::json(shape).dump());
    return it->second;
  }
  // The metadata string `key`; throws naming the file and field when absent.
  const std::string& meta(const std::string& key, const std::string& path) const {
    const auto it = metadata.find(key);
    require(it != metadata.end(), path, ": metadata field '", key, "' is missing");
    return it->second;
  }
  // The metadata field `key` as an unsigned 64-bit integer.
  std::uint64_t meta_u64(const std::string& key, const std::string& path) const {
    const std::string& v = meta(key, path);
    std::uint64_t out = 0;
    require(parse_u64(v, out), path, ": metadata field '", key, "' is '", v, "', expected an unsigned integer");
    return out;
  }
};

namespace detail {

// A header value for an error message: a scalar, or an array or object of
// scalars, in full; anything nested deeper by its type alone (dumping it
// would recurse as deep as the file nests it).
inline std::string json_brief(const nlohmann::json& v) {
  if (v.is_structured())
    for (const auto& e : v)
      if (e.is_structured()) return std::string("a nested JSON ") + v.type_name();
  return v.dump();
}

}  // namespace detail

// The largest JSON header accepted (the limit of the reference
// implementation, huggingface/safetensors).
inline constexpr std::uint64_t max_safetensors_header = 100u << 20;

// Parses a safetensors image held in memory; `name` (the file's path)
// prefixes every error, which names the tensor and field at fault.
inline safetensors_file parse_safetensors(const unsigned char* file, std::size_t file_size, const std::string& name) {
  const std::string& path = name;
  const auto size = static_cast<std::uint64_t>(file_size);
  require(size >= 8, path, ": not a safetensors file (", size, " bytes)");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | file[static_cast<std::size_t>(i)];
  require(n <= size - 8, path, ": truncated header (", n, " bytes announced, ", size - 8, " present)");
  require(n <= max_safetensors_header, path, ": header of ", n, " bytes exceeds the ", max_safetensors_header,
          "-byte limit");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file + 8, file + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    nmhash::detail::fail(path, ": malformed safetensors header: ", e.what());
  }
  require(header.is_object(), path, ": safetensors header is not a JSON object");
  const std::uint64_t data_size = size - 8 - n;
  const unsigned char* data = file + 8 + n;
  safetensors_file out;
  struct data_span {
    std::uint64_t begin, end;
    std::string name;
    bool operator<(const data_span& o) const {
      if (begin != o.begin) return begin < o.begin;
      return end != o.end ? end < o.end : name < o.name;
    }
  };
  std::vector<data_span> spans;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      require(entry.is_object(), path, ": __metadata__ is not a JSON object");
      for (const auto& [k, v] : entry.items()) {
        require(v.is_string(), path, ": __metadata__ field '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string& tname = key;
    require(entry.is_object(), path, ": tensor '", tname, "': entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      require(entry.contains(field), path, ": tensor '", tname, "' has no field '", field, "'");
    named_tensor t;
    require(entry["dtype"].is_string(), path, ": tensor '", tname, "': field 'dtype' is not a string");
    t.dtype = entry["dtype"].get<std::string>();
    require(t.dtype == "F32" || t.dtype == "F64" || t.dtype == "I64", path, ": tensor '", tname,
            "' has unsupported dtype ", t.dtype, " (F32, F64 or I64 expected)");
    const auto& shape = entry["shape"];
    require(shape.is_array(), path, ": tensor '", tname, "': field 'shape' is not an array");
    for (const auto& d : shape) {
      require(d.is_number_unsigned(), path, ": tensor '", tname, "': field 'shape' holds ", detail::json_brief(d),
              ", expected a non-negative integer");
      t.shape.push_back(d.get<std::size_t>());
    }
    const auto& off = entry["data_offsets"];
    require(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), path,
            ": tensor '", tname, "': field 'data_offsets' is ", detail::json_brief(off), ", expected [begin, end] byte offsets");
    const auto begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
    require(begin <= end, path, ": tensor '", tname, "': data_offsets [", begin, ", ", end, "] end before they begin");
    require(end <= data_size, path, ": tensor '", tname, "' ends at byte ", end, " of a ", data_size,
            "-byte data section (truncated file)");
    std::size_t values = 0, bytes = 0;
    require(shape_product_fits(t.shape, values) && mul_fits(values, t.dtype == "F32" ? 4u : 8u, bytes), path,
            ": tensor '", tname, "': field 'shape' ", shape.dump(), " overflows a 64-bit size");
    require(end - begin == bytes, path, ": tensor '", tname, "' has ", end - begin, " bytes for its shape ",
            shape.dump(), " (", bytes, " expected)");
    spans.push_back({begin, end, tname});
    out.tensors.emplace(tname, std::move(t));
  }
  // No two tensors share bytes (the reference implementation requires as
  // much), so the tensors together copy at most the data section.
  std::sort(spans.begin(), spans.end());
  const data_span* last = nullptr;
  for (const data_span& sp : spans) {
    if (sp.begin == sp.end) continue;
    require(!last || sp.begin >= last->end, path, ": tensor '", sp.name, "': data_offsets [", sp.begin, ", ", sp.end,
            "] overlap those of tensor '", last ? last->name : "", "' [", last ? last->begin : 0, ", ",
            last ? last->end : 0, "]");
    last = &sp;
  }
  const auto stored = out.metadata.find(checksum_field);
  if (stored != out.metadata.end()) {
    detail::tensor_entries entries;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> at;
    for (const data_span& sp : spans) at[sp.name] = {sp.begin, sp.end};
    for (const auto& [tname, t] : out.tensors) entries.emplace_back(tname, t.dtype, t.shape, at[tname].first, at[tname].second);
    const std::string actual =
        detail::hex32(detail::safetensors_checksum(entries, out.metadata, data, static_cast<std::size_t>(data_size)));
    require(actual == stored->second, path, ": checksum mismatch: the content's CRC-32 is ", actual, ", the file records ",
            stored->second, " (the file is damaged; nothing was loaded)");
    out.metadata.erase(stored);
  }
  for (const data_span& sp : spans) out.tensors[sp.name].bytes.assign(data + sp.begin, data + sp.end);
  return out;
}

inline safetensors_file load_safetensors(const std::string& path) {
  const std::vector<unsigned char> file = read_file(path);
  return parse_safetensors(file.data(), file.size(), path);
}

}  // namespace nmhash::io
