// libFuzzer harness for binary index files: nmhash's own format (read into
// memory and memory-mapped, with and without the checksum) and FAISS's
// IndexBinaryFlat / IndexBinaryIDMap files. The parsers read files, so the
// input is written to a scratch file first. Only nmhash::error may leave the
// library; an accepted index is self-consistent (sizes, padding bits, ids)
// and searchable, and no input makes a reader hold more heap than a small
// multiple of its size.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/index/index_io.hpp"

#include "harness.hpp"

namespace {

using nmhash_fuzz::check;

// The codes and ids (at most the input), a copy while loading, the error
// messages.
constexpr std::size_t heap_bound(std::size_t size) { return 4 * size + (256u << 10); }

void check_index(const nmhash::binary_index& idx, std::size_t input_size) {
  check(idx.bits() >= 1 && idx.bits() <= nmhash::max_code_bits);
  check(idx.code_size() == (idx.bits() + 7) / 8);
  check(idx.size() * idx.code_size() <= input_size);
  if (idx.bits() % 8 != 0)
    for (std::size_t i = 0; i < idx.size(); ++i)
      check((idx.codes()[i * idx.code_size() + idx.code_size() - 1] >> (idx.bits() % 8)) == 0);
  const nmhash::packed_codes q(1, idx.bits());
  const auto r = idx.search(q, 3);
  for (std::size_t j = 0; j < 3; ++j) {
    if (j < idx.size()) {
      check(r.distances[j] >= 0 && static_cast<std::size_t>(r.distances[j]) <= idx.bits());
      check(idx.has_ids() || (r.indices[j] >= 0 && static_cast<std::size_t>(r.indices[j]) < idx.size()));
    } else {
      check(r.indices[j] == -1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/nmhash-fuzz-index-" + std::to_string(::getpid()) + ".bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  nmhash_fuzz::heap_peak heap;
  try {
    const auto info = nmhash::io::read_index_info(path);
    check(info.file_size == size);
  } catch (const nmhash::error&) {
  }
  try {
    check_index(nmhash::io::open_index(path), size);
  } catch (const nmhash::error&) {
  }
  for (bool verify : {true, false}) {
    try {
      nmhash::io::index_load_options opt;
      opt.verify_checksum = verify;
      const auto idx = nmhash::io::map_index(path, opt);
      check(idx.read_only());
      // Without the checksum a mapped file may hold padding bits; the scan
      // still reads only the codes' bytes.
      if (verify) check_index(idx, size);
      else (void)idx.search(nmhash::packed_codes(1, idx.bits()), 2);
    } catch (const nmhash::error&) {
    }
  }
  heap.stop();
  check(heap.bytes() <= heap_bound(size));
  return 0;
}
