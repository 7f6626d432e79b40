// Weights in the safetensors format (https://huggingface.co/docs/safetensors),
// readable by PyTorch's safetensors.torch.load_file: an 8-byte little-endian
// header length, a JSON header mapping each tensor name to its dtype, shape
// and byte range, then the raw little-endian data. Written atomically;
// malformed, truncated or mismatching files are reported with the file and
// tensor name.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "nmhash/core/error.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

// One named tensor: float32 or float64 values with a shape.
struct named_tensor {
  std::string dtype;  // "F32" or "F64"
  std::vector<std::size_t> shape;
  std::vector<unsigned char> bytes;

  std::size_t elements() const {
    std::size_t n = 1;
    for (std::size_t s : shape) n *= s;
    return n;
  }
  template <class T>
  static named_tensor from(const T* data, std::vector<std::size_t> shape) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "F32 or F64 only");
    named_tensor t;
    t.dtype = std::is_same_v<T, float> ? "F32" : "F64";
    t.shape = std::move(shape);
    t.bytes.resize(t.elements() * sizeof(T));
    if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
    return t;
  }
  // Copies the values into out (n elements), converting F32 <-> F64.
  template <class T>
  void copy_to(T* out, std::size_t n) const {
    require(n == elements(), "safetensors: tensor has ", elements(), " values, expected ", n);
    if (dtype == "F32") {
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

// Writes the tensors (and string metadata) atomically.
inline void save_safetensors(const std::string& path, const tensor_map& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    require(t.dtype == "F32" || t.dtype == "F64", path, ": tensor '", name, "' has dtype ", t.dtype);
    require(t.bytes.size() == t.elements() * (t.dtype == "F32" ? 4 : 8), path, ": tensor '", name,
            "' holds ", t.bytes.size(), " bytes for shape of ", t.elements(), " values");
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  atomic_file f(path);
  f.write(len, 8);
  f.write(text.data(), text.size());
  for (const auto& [name, t] : tensors) f.write(t.bytes.data(), t.bytes.size());
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
};

inline safetensors_file load_safetensors(const std::string& path) {
  const std::vector<unsigned char> file = read_file(path);
  const auto size = static_cast<std::uint64_t>(file.size());
  require(size >= 8, path, ": not a safetensors file (", size, " bytes)");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | file[static_cast<std::size_t>(i)];
  require(n <= size - 8, path, ": truncated header (", n, " bytes announced, ", size - 8, " present)");
  const std::string text(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    nmhash::detail::fail(path, ": malformed safetensors header: ", e.what());
  }
  require(header.is_object(), path, ": safetensors header is not a JSON object");
  const std::uint64_t data_size = size - 8 - n;
  const auto data = file.begin() + 8 + static_cast<long>(n);
  safetensors_file out;
  try {
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, v] : entry.items()) out.metadata[k] = v.get<std::string>();
        continue;
      }
      named_tensor t;
      t.dtype = entry.at("dtype").get<std::string>();
      require(t.dtype == "F32" || t.dtype == "F64", path, ": tensor '", name, "' has unsupported dtype ",
              t.dtype, " (F32 or F64 expected)");
      t.shape = entry.at("shape").get<std::vector<std::size_t>>();
      const auto off = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
      require(off.size() == 2 && off[0] <= off[1], path, ": tensor '", name, "' has bad data_offsets");
      require(off[1] <= data_size, path, ": tensor '", name, "' ends at byte ", off[1], " of a ",
              data_size, "-byte data section (truncated file)");
      require(off[1] - off[0] == t.elements() * (t.dtype == "F32" ? 4u : 8u), path, ": tensor '", name,
              "' has ", off[1] - off[0], " bytes for its shape");
      t.bytes.assign(data + static_cast<long>(off[0]), data + static_cast<long>(off[1]));
      out.tensors.emplace(name, std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    nmhash::detail::fail(path, ": malformed safetensors header: ", e.what());
  }
  return out;
}

}  // namespace nmhash::io
