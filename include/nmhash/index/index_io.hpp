// Files of a binary_index: nmhash's own format (save_index, load_index,
// map_index) and FAISS's IndexBinaryFlat / IndexBinaryIDMap files
// (read_faiss_index, write_faiss_index, as faiss.write_index_binary and
// faiss.read_index_binary), so an engine moves between the two without
// re-encoding. open_index tells the formats apart by their first bytes.
//
// nmhash index file, version 1, little-endian:
//   offset  0  magic "NMHBIDX\0"
//           8  u32 format version (1)
//          12  u32 K, code length in bits (1 .. max_code_bits)
//          16  u32 code size in bytes, ceil(K / 8)
//          20  u32 flags: bit 0 set when the file holds ids
//          24  u64 n, number of codes
//          32  u64 offset of the codes (64)
//          40  u64 offset of the ids (8-aligned, after the codes), 0 without
//          48  u64 file size
//          56  u32 CRC-32 of the codes then the ids (zlib's crc32)
//          60  u32 CRC-32 of bytes 0 .. 59
//          64  codes, n x code size bytes (byte_scan.hpp's layout), zero
//              padding to a multiple of 8, then n int64 ids
// A file is written to a temporary and renamed into place (atomic_file):
// a reader finds the old file or the whole new one.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

inline constexpr char index_magic[8] = {'N', 'M', 'H', 'B', 'I', 'D', 'X', '\0'};
inline constexpr std::uint32_t index_format_version = 1;

enum class index_format { nmhash, faiss, unknown };

struct index_load_options {
  // Check the payload's CRC-32 (reads every byte; map_index of a large file
  // may skip it and trust the header's own checksum and sizes).
  bool verify_checksum = true;
};

// What a file's header says, without its payload (nmhash_index --info).
struct index_info {
  index_format format = index_format::unknown;
  std::string type;  // "nmhash", "IndexBinaryFlat", "IndexBinaryIDMap", "IndexBinaryIDMap2"
  std::uint32_t version = 0;
  std::size_t bits = 0, code_size = 0, count = 0, file_size = 0;
  bool has_ids = false;
};

namespace detail {

inline std::uint32_t crc32_of(std::uint32_t crc, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {
    const std::size_t step = std::min<std::size_t>(bytes, std::size_t{1} << 30);
    crc = static_cast<std::uint32_t>(::crc32(crc, p, static_cast<uInt>(step)));
    p += step;
    bytes -= step;
  }
  return crc;
}

template <class T>
void put(std::vector<std::uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

template <class T>
T get(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A file read front to back with its path and offset in every error.
class file_reader {
 public:
  explicit file_reader(const std::string& path) : path_(path) {
    struct stat st {};
    const int fd = io::open_regular_input(path, st);
    f_ = ::fdopen(fd, "rb");
    if (f_ == nullptr) {
      const int e = errno;
      ::close(fd);
      nmhash::detail::fail(path, ": cannot open: ", errno_text(e));
    }
    size_ = static_cast<std::size_t>(st.st_size);
  }
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;
  ~file_reader() {
    if (f_) std::fclose(f_);
  }

  std::size_t size() const { return size_; }
  std::size_t offset() const { return at_; }
  const std::string& path() const { return path_; }

  // Throws unless `bytes` more bytes are left: called before allocating
  // for a size the file declares.
  void expect_left(std::size_t bytes, const char* what) const {
    require(bytes <= size_ - at_, path_, ": truncated: ", what, " needs ", bytes, " bytes at offset ", at_,
            " but the file has ", size_ - at_, " left (file size ", size_, ")");
  }

  void read(void* out, std::size_t bytes, const char* what) {
    expect_left(bytes, what);
    auto* p = static_cast<std::uint8_t*>(out);
    std::size_t done = 0;
    while (done < bytes) {
      const std::size_t got = std::fread(p + done, 1, bytes - done, f_);
      require(got > 0, path_, ": read error at offset ", at_ + done, ": ", errno_text(errno));
      done += got;
    }
    at_ += bytes;
  }
  template <class T>
  T read(const char* what) {
    T v;
    read(&v, sizeof(T), what);
    return v;
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::size_t size_ = 0, at_ = 0;
};

inline std::size_t round8(std::size_t x) { return (x + 7) / 8 * 8; }

// The header of an nmhash index file, checked against itself and the file
// size.
struct nmh_header {
  std::uint32_t version = 0, bits = 0, code_size = 0, flags = 0;
  std::uint64_t count = 0, codes_offset = 0, ids_offset = 0, file_size = 0;
  std::uint32_t payload_crc = 0;
};

inline std::vector<std::uint8_t> encode_header(const nmh_header& h) {
  std::vector<std::uint8_t> out(index_magic, index_magic + 8);
  put(out, h.version);
  put(out, h.bits);
  put(out, h.code_size);
  put(out, h.flags);
  put(out, h.count);
  put(out, h.codes_offset);
  put(out, h.ids_offset);
  put(out, h.file_size);
  put(out, h.payload_crc);
  put(out, crc32_of(0, out.data(), out.size()));
  return out;
}

inline nmh_header decode_header(const std::uint8_t* b, std::size_t file_size, const std::string& path) {
  require(file_size >= 64, path, ": truncated: an nmhash index header is 64 bytes, the file has ", file_size);
  require(std::memcmp(b, index_magic, 8) == 0, path, ": not an nmhash index file (bad magic)");
  nmh_header h;
  h.version = get<std::uint32_t>(b + 8);
  require(h.version == index_format_version, path, ": nmhash index format version ", h.version,
          " is not supported: this build reads version ", index_format_version);
  const std::uint32_t stored = get<std::uint32_t>(b + 60);
  const std::uint32_t actual = crc32_of(0, b, 60);
  require(stored == actual, path, ": header checksum mismatch (stored ", stored, ", computed ", actual,
          "): the header is damaged");
  h.bits = get<std::uint32_t>(b + 12);
  h.code_size = get<std::uint32_t>(b + 16);
  h.flags = get<std::uint32_t>(b + 20);
  h.count = get<std::uint64_t>(b + 24);
  h.codes_offset = get<std::uint64_t>(b + 32);
  h.ids_offset = get<std::uint64_t>(b + 40);
  h.file_size = get<std::uint64_t>(b + 48);
  h.payload_crc = get<std::uint32_t>(b + 56);
  require(h.bits >= 1 && h.bits <= max_code_bits, path, ": header field K: expected 1 to ", max_code_bits,
          ", found ", h.bits);
  require(h.code_size == (h.bits + 7) / 8, path, ": header field code size: expected ", (h.bits + 7) / 8,
          " bytes for K = ", h.bits, ", found ", h.code_size);
  require((h.flags & ~1u) == 0, path, ": header field flags: unknown bits set (", h.flags, ")");
  require(h.codes_offset == 64, path, ": header field codes offset: expected 64, found ", h.codes_offset);
  std::size_t code_bytes = 0, end = 0;
  require(mul_fits(h.count, h.code_size, code_bytes) && add_fits(64, code_bytes, end), path,
          ": header field n = ", h.count, " codes overflows a 64-bit size");
  if (h.flags & 1u) {
    const std::size_t ids_at = round8(end);
    require(h.ids_offset == ids_at, path, ": header field ids offset: expected ", ids_at, ", found ",
            h.ids_offset);
    std::size_t id_bytes = 0;
    require(mul_fits(h.count, 8, id_bytes) && add_fits(ids_at, id_bytes, end), path, ": header field n = ",
            h.count, " ids overflows a 64-bit size");
  } else {
    require(h.ids_offset == 0, path, ": header field ids offset: expected 0 (no ids), found ", h.ids_offset);
  }
  require(h.file_size == end, path, ": header field file size: expected ", end, " for ", h.count,
          " codes, found ", h.file_size);
  require(file_size == h.file_size, path, ": the file is ", file_size, " bytes but its header says ", h.file_size,
          file_size < h.file_size ? " (truncated)" : " (trailing bytes)");
  return h;
}

inline const char* faiss_type_name(const char* fourcc) {
  if (!std::memcmp(fourcc, "IBxF", 4)) return "IndexBinaryFlat";
  if (!std::memcmp(fourcc, "IBMp", 4)) return "IndexBinaryIDMap";
  if (!std::memcmp(fourcc, "IBM2", 4)) return "IndexBinaryIDMap2";
  if (!std::memcmp(fourcc, "IBHf", 4)) return "IndexBinaryHNSW";
  if (!std::memcmp(fourcc, "IBwF", 4)) return "IndexBinaryIVF";
  if (!std::memcmp(fourcc, "IBHh", 4)) return "IndexBinaryHash";
  if (!std::memcmp(fourcc, "IBHm", 4)) return "IndexBinaryMultiHash";
  if (!std::memcmp(fourcc, "IBFf", 4)) return "IndexBinaryFromFloat";
  return nullptr;
}

// FAISS's IndexBinary header: d, code_size, ntotal, is_trained, metric.
struct faiss_header {
  std::int32_t d = 0, code_size = 0;
  std::int64_t ntotal = 0;
  std::uint8_t is_trained = 0;
  std::int32_t metric = 0;
};

inline faiss_header read_faiss_header(file_reader& r) {
  faiss_header h;
  h.d = r.read<std::int32_t>("field d");
  h.code_size = r.read<std::int32_t>("field code_size");
  h.ntotal = r.read<std::int64_t>("field ntotal");
  h.is_trained = r.read<std::uint8_t>("field is_trained");
  h.metric = r.read<std::int32_t>("field metric_type");
  const std::string& p = r.path();
  require(h.d >= 8 && h.d % 8 == 0 && static_cast<std::size_t>(h.d) <= max_code_bits, p,
          ": field d: expected a multiple of 8 in [8, ", max_code_bits, "], found ", h.d);
  require(h.code_size == h.d / 8, p, ": field code_size: expected d / 8 = ", h.d / 8, ", found ", h.code_size);
  require(h.ntotal >= 0, p, ": field ntotal: expected >= 0, found ", h.ntotal);
  return h;
}

inline void write_faiss_header(std::vector<std::uint8_t>& out, const char* fourcc, const binary_index& idx) {
  out.insert(out.end(), fourcc, fourcc + 4);
  put(out, static_cast<std::int32_t>(idx.bits()));
  put(out, static_cast<std::int32_t>(idx.code_size()));
  put(out, static_cast<std::int64_t>(idx.size()));
  put(out, std::uint8_t{1});
  put(out, std::int32_t{1});  // METRIC_L2, what FAISS writes for binary indexes
}

}  // namespace detail

// Writes `idx` to `path` in nmhash's format (atomically).
inline void save_index(const binary_index& idx, const std::string& path) {
  const std::size_t n = idx.size(), cs = idx.code_size();
  const std::size_t code_bytes = checked_mul(n, cs, path, ": codes");
  detail::nmh_header h;
  h.version = index_format_version;
  h.bits = static_cast<std::uint32_t>(idx.bits());
  h.code_size = static_cast<std::uint32_t>(cs);
  h.flags = idx.has_ids() ? 1u : 0u;
  h.count = n;
  h.codes_offset = 64;
  const std::size_t pad = detail::round8(64 + code_bytes) - (64 + code_bytes);
  h.ids_offset = idx.has_ids() ? 64 + code_bytes + pad : 0;
  h.file_size = idx.has_ids() ? h.ids_offset + 8 * n : 64 + code_bytes;
  const std::uint8_t zeros[8] = {};
  std::uint32_t crc = detail::crc32_of(0, idx.codes(), code_bytes);
  if (idx.has_ids()) {
    crc = detail::crc32_of(crc, zeros, pad);
    crc = detail::crc32_of(crc, idx.ids(), 8 * n);
  }
  h.payload_crc = crc;
  atomic_file f(path);
  const auto head = detail::encode_header(h);
  f.write(head.data(), head.size());
  f.write(idx.codes(), code_bytes);
  if (idx.has_ids()) {
    f.write(zeros, pad);
    f.write(idx.ids(), 8 * n);
  }
  f.commit();
}

// Reads an nmhash index file into memory, checking the header, the sizes,
// the checksum and that no code has bits set beyond K.
inline binary_index load_index(const std::string& path, const index_load_options& opt = {}) {
  detail::file_reader r(path);
  std::uint8_t head[64] = {};
  r.read(head, std::min<std::size_t>(64, r.size()), "the header");
  const auto h = detail::decode_header(head, r.size(), path);
  const std::size_t n = h.count, cs = h.code_size;
  std::vector<std::uint8_t> codes(n * cs);
  r.read(codes.data(), codes.size(), "the codes");
  std::uint32_t crc = detail::crc32_of(0, codes.data(), codes.size());
  std::vector<std::int64_t> ids;
  if (h.flags & 1u) {
    std::uint8_t pad[8] = {};
    const std::size_t np = h.ids_offset - (64 + n * cs);
    r.read(pad, np, "the padding before the ids");
    crc = detail::crc32_of(crc, pad, np);
    ids.resize(n);
    r.read(ids.data(), 8 * n, "the ids");
    crc = detail::crc32_of(crc, ids.data(), 8 * n);
  }
  if (opt.verify_checksum)
    require(crc == h.payload_crc, path, ": payload checksum mismatch (stored ", h.payload_crc, ", computed ", crc,
            "): the codes or ids are damaged");
  nmhash::detail::check_code_padding(codes.data(), n, h.bits, path);
  binary_index idx(h.bits);
  idx.add_bytes(codes.data(), n, (h.flags & 1u) ? ids.data() : nullptr);
  return idx;
}

// A read-only index viewing the file through a shared read-only memory
// mapping: opening costs no copy, pages load on first use and the page
// cache is shared between processes. The header and sizes are always
// checked; the payload checksum and padding bits only when
// opt.verify_checksum (it reads the whole file once).
inline binary_index map_index(const std::string& path, const index_load_options& opt = {}) {
  struct stat st {};
  const int fd = io::open_regular_input(path, st);
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < 64) {
    ::close(fd);
    nmhash::detail::fail(path, ": truncated: an nmhash index header is 64 bytes, the file has ", size);
  }
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int e = errno;
  ::close(fd);
  require(base != MAP_FAILED, path, ": cannot map ", size, " bytes: ", detail::errno_text(e));
  std::shared_ptr<const void> keep(base, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const auto* b = static_cast<const std::uint8_t*>(base);
  const auto h = detail::decode_header(b, size, path);
  const std::size_t n = h.count;
  const std::uint8_t* codes = b + 64;
  const auto* ids = (h.flags & 1u) ? reinterpret_cast<const std::int64_t*>(b + h.ids_offset) : nullptr;
  if (opt.verify_checksum) {
    const std::uint32_t crc = detail::crc32_of(0, codes, size - 64);
    require(crc == h.payload_crc, path, ": payload checksum mismatch (stored ", h.payload_crc, ", computed ", crc,
            "): the codes or ids are damaged");
    nmhash::detail::check_code_padding(codes, n, h.bits, path);
  }
  return binary_index::view(h.bits, codes, n, ids, std::move(keep));
}

// Reads a file written by faiss.write_index_binary: IndexBinaryFlat
// (positions as ids) or IndexBinaryIDMap / IndexBinaryIDMap2 over an
// IndexBinaryFlat (the stored ids). Other FAISS index types are refused by
// name.
inline binary_index read_faiss_index(const std::string& path) {
  detail::file_reader r(path);
  char fourcc[4] = {};
  r.read(fourcc, 4, "the FAISS index type");
  const char* type = detail::faiss_type_name(fourcc);
  const bool flat = !std::memcmp(fourcc, "IBxF", 4);
  const bool idmap = !std::memcmp(fourcc, "IBMp", 4) || !std::memcmp(fourcc, "IBM2", 4);
  require(type != nullptr, path, ": not a FAISS binary index file (type code '", std::string(fourcc, 4), "')");
  require(flat || idmap, path, ": FAISS index type ", type, " (", std::string(fourcc, 4),
          ") is not supported: nmhash reads IndexBinaryFlat (IBxF) and IndexBinaryIDMap (IBMp, IBM2) over it");
  const auto outer = detail::read_faiss_header(r);
  if (idmap) {
    r.read(fourcc, 4, "the FAISS index type of the IDMap's index");
    const char* inner_type = detail::faiss_type_name(fourcc);
    require(!std::memcmp(fourcc, "IBxF", 4), path, ": ", type, " over ",
            inner_type ? inner_type : ("type code '" + std::string(fourcc, 4) + "'").c_str(),
            " is not supported: nmhash reads an IDMap over IndexBinaryFlat");
    const auto inner = detail::read_faiss_header(r);
    require(inner.d == outer.d && inner.ntotal == outer.ntotal, path, ": the IDMap says d = ", outer.d,
            ", ntotal = ", outer.ntotal, " but its index has d = ", inner.d, ", ntotal = ", inner.ntotal);
  }
  const std::size_t n = static_cast<std::size_t>(outer.ntotal), cs = static_cast<std::size_t>(outer.code_size);
  const auto bytes = r.read<std::uint64_t>("the length of the codes");
  std::size_t expect = 0;
  require(mul_fits(n, cs, expect) && bytes == expect, path, ": the codes are ", bytes, " bytes, expected ntotal x ",
          "code_size = ", n, " x ", cs);
  r.expect_left(expect, "the codes");
  std::vector<std::uint8_t> codes(expect);
  r.read(codes.data(), codes.size(), "the codes");
  std::vector<std::int64_t> ids;
  if (idmap) {
    const auto count = r.read<std::uint64_t>("the number of ids");
    require(count == n, path, ": the IDMap holds ", count, " ids for ", n, " codes");
    r.expect_left(checked_mul(n, 8, path, ": ids"), "the ids");
    ids.resize(n);
    r.read(ids.data(), 8 * n, "the ids");
  }
  require(r.offset() == r.size(), path, ": ", r.size() - r.offset(), " trailing bytes after the index (offset ",
          r.offset(), ")");
  binary_index idx(static_cast<std::size_t>(outer.d));
  idx.add_bytes(codes.data(), n, idmap ? ids.data() : nullptr);
  return idx;
}

// Writes `idx` as faiss.write_index_binary would: an IndexBinaryFlat, or an
// IndexBinaryIDMap over one when the index holds ids. FAISS needs K to be
// a multiple of 8.
inline void write_faiss_index(const binary_index& idx, const std::string& path) {
  require(idx.bits() % 8 == 0, path, ": FAISS binary indexes need K to be a multiple of 8, this index has K = ",
          idx.bits());
  std::vector<std::uint8_t> head;
  if (idx.has_ids()) detail::write_faiss_header(head, "IBMp", idx);
  detail::write_faiss_header(head, "IBxF", idx);
  const std::size_t code_bytes = idx.size() * idx.code_size();
  detail::put(head, static_cast<std::uint64_t>(code_bytes));
  atomic_file f(path);
  f.write(head.data(), head.size());
  f.write(idx.codes(), code_bytes);
  if (idx.has_ids()) {
    std::vector<std::uint8_t> tail;
    detail::put(tail, static_cast<std::uint64_t>(idx.size()));
    f.write(tail.data(), tail.size());
    f.write(idx.ids(), 8 * idx.size());
  }
  f.commit();
}

// Which format the file at `path` is in, from its first bytes.
inline index_format detect_index_format(const std::string& path) {
  detail::file_reader r(path);
  char head[8] = {};
  if (r.size() < 4) return index_format::unknown;
  r.read(head, std::min<std::size_t>(8, r.size()), "the file type");
  if (r.size() >= 8 && std::memcmp(head, index_magic, 8) == 0) return index_format::nmhash;
  if (detail::faiss_type_name(head)) return index_format::faiss;
  return index_format::unknown;
}

// The header of an nmhash index file (checked against itself and the file
// size as when loading, without reading the codes), or of a FAISS file
// (read whole: every FAISS file that a reader refuses is refused here).
inline index_info read_index_info(const std::string& path) {
  index_info info;
  info.format = detect_index_format(path);
  detail::file_reader r(path);
  info.file_size = r.size();
  if (info.format == index_format::nmhash) {
    std::uint8_t head[64] = {};
    r.read(head, 64, "the header");
    const auto h = detail::decode_header(head, r.size(), path);
    info.type = "nmhash";
    info.version = h.version;
    info.bits = h.bits;
    info.code_size = h.code_size;
    info.count = h.count;
    info.has_ids = (h.flags & 1u) != 0;
  } else if (info.format == index_format::faiss) {
    char fourcc[4] = {};
    r.read(fourcc, 4, "the FAISS index type");
    info.type = detail::faiss_type_name(fourcc);
    const auto h = detail::read_faiss_header(r);
    info.bits = static_cast<std::size_t>(h.d);
    info.code_size = static_cast<std::size_t>(h.code_size);
    info.count = static_cast<std::size_t>(h.ntotal);
    info.has_ids = info.type == "IndexBinaryIDMap" || info.type == "IndexBinaryIDMap2";
    // What a reader would refuse is refused here too: the whole file is read.
    const binary_index whole = read_faiss_index(path);
    require(whole.size() == info.count && whole.bits() == info.bits, path, ": the header describes ", info.count,
            " codes of K = ", info.bits, ", the file holds ", whole.size(), " of K = ", whole.bits());
  } else {
    nmhash::detail::fail(path, ": neither an nmhash index file (magic NMHBIDX) nor a FAISS binary index file");
  }
  return info;
}

// Loads an nmhash or FAISS index file, whichever `path` holds.
inline binary_index open_index(const std::string& path, const index_load_options& opt = {}) {
  switch (detect_index_format(path)) {
    case index_format::nmhash: return load_index(path, opt);
    case index_format::faiss: return read_faiss_index(path);
    default:
      nmhash::detail::fail(path, ": neither an nmhash index file (magic NMHBIDX) nor a FAISS binary index file");
  }
}

}  // namespace nmhash::io
