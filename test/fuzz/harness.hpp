// Shared by the fuzz harnesses: invariant checks that stop the fuzzer, and
// under AddressSanitizer a count of the heap a parser holds at its peak, so
// a harness can assert that no input makes the parser allocate more than
// its size justifies.
#pragma once

#include <cstddef>
#include <optional>

#include "nmhash/core/error.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NMHASH_FUZZ_HEAP_HOOKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(NMHASH_FUZZ_HEAP_HOOKS)
#define NMHASH_FUZZ_HEAP_HOOKS 1
#endif

#ifdef NMHASH_FUZZ_HEAP_HOOKS
// The sanitizer runtime's allocator interface (clang and GCC alike; GCC
// ships no header for it).
extern "C" {
std::size_t __sanitizer_get_allocated_size(const volatile void* p);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                              void (*free_hook)(const volatile void*));
}
#endif

namespace nmhash_fuzz {

// A violated invariant: a crash that libFuzzer reports with its input.
inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

namespace detail {

struct heap_counter {
  bool on = false;
  long long live = 0;
  long long peak = 0;
};

inline heap_counter& heap() {
  static heap_counter c;
  return c;
}

#ifdef NMHASH_FUZZ_HEAP_HOOKS
extern "C" inline void nmhash_fuzz_malloc_hook(const volatile void*, std::size_t n) {
  heap_counter& c = heap();
  if (!c.on) return;
  c.live += static_cast<long long>(n);
  if (c.live > c.peak) c.peak = c.live;
}
extern "C" inline void nmhash_fuzz_free_hook(const volatile void* p) {
  heap_counter& c = heap();
  if (c.on) c.live -= static_cast<long long>(__sanitizer_get_allocated_size(p));
}
#endif

}  // namespace detail

// The most heap bytes live at once, beyond those live when the scope began,
// while the scope runs (always 0 without AddressSanitizer).
class heap_peak {
 public:
  heap_peak() {
#ifdef NMHASH_FUZZ_HEAP_HOOKS
    static const bool installed =
        __sanitizer_install_malloc_and_free_hooks(detail::nmhash_fuzz_malloc_hook, detail::nmhash_fuzz_free_hook) != 0;
    check(installed);
#endif
    detail::heap() = detail::heap_counter{true, 0, 0};
  }
  heap_peak(const heap_peak&) = delete;
  heap_peak& operator=(const heap_peak&) = delete;
  ~heap_peak() { detail::heap().on = false; }
  std::size_t bytes() const { return static_cast<std::size_t>(detail::heap().peak); }
  void stop() { detail::heap().on = false; }
};

// parse() under a heap_peak: checks the most heap it held against `bound`
// and returns its result, or nothing when it threw nmhash::error.
template <class Parse>
auto parse_bounded(Parse parse, std::size_t bound) -> std::optional<decltype(parse())> {
  heap_peak heap;
  std::optional<decltype(parse())> out;
  try {
    out.emplace(parse());
  } catch (const nmhash::error&) {
  }
  heap.stop();
  check(heap.bytes() <= bound);
  return out;
}

}  // namespace nmhash_fuzz
