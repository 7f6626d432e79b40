// libFuzzer harness for the safetensors parser and its accessors. Only
// nmhash::error may leave the library; every accepted tensor holds exactly
// the bytes its shape and dtype call for, and no input may make the parser
// hold more heap than a small multiple of its size.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/io/safetensors.hpp"

#include "harness.hpp"

namespace {

using nmhash_fuzz::check;

// Heap the parser may hold for `size` input bytes: the JSON document (a few
// dozen bytes per input byte at worst, "[[[[..."), the tensors' bytes and
// the error messages.
constexpr std::size_t heap_bound(std::size_t size) { return 128 * size + (256u << 10); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string name = "fuzz.safetensors";
  const auto parsed =
      nmhash_fuzz::parse_bounded([&] { return nmhash::io::parse_safetensors(data, size, name); }, heap_bound(size));
  if (!parsed) return 0;
  const nmhash::io::safetensors_file& f = *parsed;
  check(size >= 8);
  std::size_t total = 0;
  for (const auto& [tname, t] : f.tensors) {
    check(t.dtype == "F32" || t.dtype == "F64");
    const std::size_t item = t.dtype == "F32" ? 4 : 8;
    std::size_t elements = 0, bytes = 0;
    check(nmhash::shape_product_fits(t.shape, elements));
    check(!__builtin_mul_overflow(elements, item, &bytes));
    check(bytes == t.bytes.size());
    check(t.elements() == elements);
    check(!__builtin_add_overflow(total, bytes, &total));
    std::vector<double> values(elements);
    t.copy_to(values.data(), values.size());
    for (std::size_t i = 0; i < elements && i < 16; ++i) {
      double expect = 0;
      if (item == 4) {
        float v = 0;
        std::memcpy(&v, t.bytes.data() + 4 * i, 4);
        expect = v;
      } else {
        std::memcpy(&expect, t.bytes.data() + 8 * i, 8);
      }
      check(expect == values[i] || (expect != expect && values[i] != values[i]));
    }
    try {
      t.copy_to(values.data(), values.size() + 1);
      __builtin_trap();
    } catch (const nmhash::error&) {
    }
    const auto& same = f.at(tname, t.shape, name);
    check(&same == &t);
  }
  // No two tensors share bytes: together they fit in the data section.
  check(total <= size - 8);
  const std::string key = f.metadata.count("bits") || f.metadata.empty() ? "bits" : f.metadata.begin()->first;
  try {
    const std::uint64_t v = f.meta_u64(key, name);
    const std::string& text = f.meta(key, name);
    check(!text.empty() && text.size() <= 20);
    for (char c : text) check(c >= '0' && c <= '9');
    std::uint64_t again = 0;
    check(nmhash::parse_u64(text, again) && again == v);
  } catch (const nmhash::error&) {
  }
  return 0;
}
