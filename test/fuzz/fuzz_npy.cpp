// libFuzzer harness for the .npy parser and the codes / labels readers on
// top of it. Only nmhash::error may leave the library; whatever it accepts
// must be self-consistent, and no input may make them hold more heap than a
// small multiple of its size.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nmhash/core/error.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"

#include "harness.hpp"

namespace {

using nmhash_fuzz::check;

// Heap the parser and the readers may hold: the header and the data (each
// at most the input), codes or labels (at most 9 bytes per input byte) and
// the error messages.
constexpr std::size_t heap_bound(std::size_t size) { return 16 * size + (64u << 10); }

void check_accepted(const nmhash::io::npy_array& a, std::size_t input_size) {
  const char k = a.kind;
  check(k == 'b' || k == 'i' || k == 'u' || k == 'f');
  check(a.item_size == 1 || a.item_size == 2 || a.item_size == 4 || a.item_size == 8);
  check(k != 'b' || a.item_size == 1);
  check(k != 'f' || a.item_size >= 4);
  check(a.shape.size() <= 32);
  std::size_t elements = 0, bytes = 0;
  check(nmhash::shape_product_fits(a.shape, elements));
  check(!__builtin_mul_overflow(elements, a.item_size, &bytes));
  check(bytes == a.bytes.size());
  check(a.bytes.size() <= input_size);
  check(a.elements() == elements);
  check(a.shape.empty() || a.rows() * a.cols() == elements);
  for (std::size_t i = 0; i < elements && i < 64; ++i) {
    const double v = a.get<double>(i);
    (void)v;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string name = "fuzz.npy";
  nmhash_fuzz::heap_peak heap;
  nmhash::io::npy_array a;
  try {
    a = nmhash::io::parse_npy(data, size, name);
  } catch (const nmhash::error&) {
    check(heap.bytes() <= heap_bound(size));
    return 0;
  }
  check_accepted(a, size);
  try {
    const nmhash::packed_codes c = nmhash::io::codes_from_npy(a, name, 0);
    check(a.shape.size() == 2);
    check(c.size() == a.rows());
    const bool packed = a.kind == 'u' && a.item_size == 1;
    check(c.bits() == (packed ? 8 * a.shape[1] : a.shape[1]));
  } catch (const nmhash::error&) {
  }
  try {
    const nmhash::labels l = nmhash::io::labels_from_npy(a, name);
    check(l.size() == a.rows());
    check(!l.is_multi() || (a.shape.size() == 2 && l.num_labels() == a.shape[1]));
  } catch (const nmhash::error&) {
  }
  heap.stop();
  check(heap.bytes() <= heap_bound(size));
  return 0;
}
