// Run-time choice of the instruction set for the Hamming hot paths.
//
// nmhash's scans (top-k, range, distances, the metrics' histograms,
// leave-one-bit-out MAP) are compiled for several instruction-set levels in
// every translation unit, whatever its -m flags, and the level is chosen at
// run time from the CPU:
//   generic  any x86-64 (or any other architecture): portable code
//   popcnt   x86-64-v2: the POPCNT instruction
//   avx2     x86-64-v3: AVX2 scans and bit counters
//   avx512   AVX-512 F/BW with VPOPCNTDQ (Ice Lake, Zen 4 and later)
// A kernel is entered through with_isa(), which calls the function object
// inside a trampoline compiled for the chosen level (target attribute plus
// flatten, so the kernel's inline callees are compiled for that level too).
// No type or inline function changes its definition with the translation
// unit's flags, so translation units built with different -m flags link
// into one program safely as far as nmhash is concerned. (A translation
// unit built with -mavx2 still lets the compiler use AVX2 in any inline
// function it emits, nmhash's or the standard library's: build a binary
// meant for older CPUs without such flags; nmhash needs none for speed.)
//
// The level is capped by the environment variable NMHASH_ISA
// (generic|popcnt|avx2|avx512; read once) or by set_isa_limit(), for tests
// and benchmarks; results do not depend on the level.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "nmhash/core/error.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__CUDA_ARCH__)
#define NMHASH_X86_DISPATCH 1
#define NMHASH_TARGET(isa_list) __attribute__((target(isa_list)))
#if defined(__SANITIZE_ADDRESS__)
// Sanitizer builds check memory, not speed: the kernels' callees may stay
// out of line there, which saves most of the trampolines' compile time.
#define NMHASH_FLATTEN
#else
#define NMHASH_FLATTEN __attribute__((flatten))
#endif
#else
#define NMHASH_X86_DISPATCH 0
#define NMHASH_TARGET(isa_list)
#define NMHASH_FLATTEN
#endif

#define NMHASH_TARGET_POPCNT NMHASH_TARGET("popcnt,sse4.2")
#define NMHASH_TARGET_AVX2 NMHASH_TARGET("popcnt,sse4.2,avx,avx2,bmi,bmi2")
#define NMHASH_TARGET_AVX512 \
  NMHASH_TARGET("popcnt,sse4.2,avx,avx2,bmi,bmi2,avx512f,avx512bw,avx512vl,avx512vpopcntdq")

namespace nmhash {

enum class isa : int { generic = 0, popcnt = 1, avx2 = 2, avx512 = 3 };

template <isa I>
using isa_constant = std::integral_constant<isa, I>;

inline const char* isa_name(isa i) {
  switch (i) {
    case isa::generic: return "generic";
    case isa::popcnt: return "popcnt";
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
  }
  return "?";
}

namespace detail {

inline isa detect_isa() {
#if NMHASH_X86_DISPATCH
  // __builtin_cpu_supports checks that the OS saves the vector state too.
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("popcnt")) return isa::generic;
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2"))) return isa::popcnt;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq"))
    return isa::avx512;
  return isa::avx2;
#else
  return isa::generic;
#endif
}

inline isa parse_isa(const char* s, const char* what) {
  for (int i = 0; i <= static_cast<int>(isa::avx512); ++i)
    if (std::strcmp(s, isa_name(static_cast<isa>(i))) == 0) return static_cast<isa>(i);
  fail(what, ": expected one of generic, popcnt, avx2, avx512, found \"", s, "\"");
}

inline std::atomic<int>& isa_limit_slot() {
  static std::atomic<int> slot{[] {
    const char* env = std::getenv("NMHASH_ISA");
    return env && *env ? static_cast<int>(parse_isa(env, "environment variable NMHASH_ISA"))
                       : static_cast<int>(isa::avx512);
  }()};
  return slot;
}

}  // namespace detail

// The best level this CPU supports (detected once).
inline isa detected_isa() {
  static const isa level = detail::detect_isa();
  return level;
}

// The level kernels use: the detected one, capped by NMHASH_ISA and
// set_isa_limit().
inline isa active_isa() {
  const int cap = detail::isa_limit_slot().load(std::memory_order_relaxed);
  const int det = static_cast<int>(detected_isa());
  return static_cast<isa>(cap < det ? cap : det);
}

// Caps the level for the whole process (a level above the CPU's is capped
// to the CPU's). Not meant to change while kernels run.
inline void set_isa_limit(isa cap) {
  detail::isa_limit_slot().store(static_cast<int>(cap), std::memory_order_relaxed);
}

namespace detail {

// The translation unit's own flags: nothing to recompile.
template <class F>
void run_isa_generic(F& f) {
  f(isa_constant<isa::generic>{});
}

#if NMHASH_X86_DISPATCH
template <class F>
NMHASH_TARGET_POPCNT NMHASH_FLATTEN void run_isa_popcnt(F& f) {
  f(isa_constant<isa::popcnt>{});
}
template <class F>
NMHASH_TARGET_AVX2 NMHASH_FLATTEN void run_isa_avx2(F& f) {
  f(isa_constant<isa::avx2>{});
}
template <class F>
NMHASH_TARGET_AVX512 NMHASH_FLATTEN void run_isa_avx512(F& f) {
  f(isa_constant<isa::avx512>{});
}
#endif

}  // namespace detail

// Calls f(isa_constant<L>{}) for the active level L, compiled for L. f
// returns nothing (write results through captures). Call it inside a
// parallel task, not around one: an OpenMP region is a separate function
// that the trampoline cannot compile for the level.
template <class F>
void with_isa(F&& f) {
#if NMHASH_X86_DISPATCH
  switch (active_isa()) {
    case isa::avx512: detail::run_isa_avx512(f); return;
    case isa::avx2: detail::run_isa_avx2(f); return;
    case isa::popcnt: detail::run_isa_popcnt(f); return;
    case isa::generic: break;
  }
#endif
  detail::run_isa_generic(f);
}

}  // namespace nmhash
