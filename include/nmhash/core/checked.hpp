// Overflow-checked size arithmetic for sizes that come from files and
// options: a product or sum that does not fit in std::size_t throws
// nmhash::error naming what was being computed instead of wrapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"

namespace nmhash {

// a * b, or false when it does not fit.
inline bool mul_fits(std::size_t a, std::size_t b, std::size_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}
inline bool add_fits(std::size_t a, std::size_t b, std::size_t& out) {
  return !__builtin_add_overflow(a, b, &out);
}

// a * b; throws "<what>: a x b overflows" when it does not fit.
template <class... Context>
std::size_t checked_mul(std::size_t a, std::size_t b, const Context&... what) {
  std::size_t r = 0;
  require(mul_fits(a, b, r), what..., ": ", a, " x ", b, " overflows a 64-bit size");
  return r;
}

template <class... Context>
std::size_t checked_add(std::size_t a, std::size_t b, const Context&... what) {
  std::size_t r = 0;
  require(add_fits(a, b, r), what..., ": ", a, " + ", b, " overflows a 64-bit size");
  return r;
}

// The product of a shape's dimensions, or false when it does not fit.
inline bool shape_product_fits(const std::vector<std::size_t>& shape, std::size_t& out) {
  std::size_t n = 1;
  for (std::size_t s : shape)
    if (!mul_fits(n, s, n)) return false;
  out = n;
  return true;
}

// Parses a decimal unsigned integer that must fit in 64 bits (digits only,
// no sign, no spaces); false on anything else.
inline bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, std::uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<std::uint64_t>(c - '0'), &v))
      return false;
  }
  out = v;
  return true;
}

}  // namespace nmhash
