// The packed binary code matrix: N codes of K bits stored as 64-bit words,
// row-major. Everything in retrieval/ and the NMLayer's bit operations work
// on this type.
//
// Bit order: bit j (j = 0..K-1, the j-th hashing output) of code i lives in
// word i * words_per_code() + j / 64 at bit position j % 64 (the least
// significant bit is bit 0). Bits at positions >= K in the last word of a
// row are always zero, so XOR + popcount over whole words is the Hamming
// distance. A bit set to 1 stands for the code value +1, a 0 bit for -1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmhash/core/bits.hpp"
#include "nmhash/core/error.hpp"

namespace nmhash {

// Largest code length accepted. Distances are bounded by K, and ranking and
// metric code allocates O(K) histograms per query.
inline constexpr std::size_t max_code_bits = 4096;

class packed_codes {
 public:
  packed_codes() = default;

  // n codes of `bits` bits, every bit 0 (every code value -1).
  packed_codes(std::size_t n, std::size_t bits)
      : n_(n), bits_(bits), words_(words_for_bits(bits)) {
    require(bits >= 1 && bits <= max_code_bits, "packed_codes: code length K = ", bits,
            " is outside [1, ", max_code_bits, "]");
    data_.assign(n_ * words_, 0);
  }

  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  std::size_t bits() const { return bits_; }
  std::size_t words_per_code() const { return words_; }

  const std::uint64_t* data() const { return data_.data(); }
  std::uint64_t* data() { return data_.data(); }
  const std::uint64_t* row(std::size_t i) const { return data_.data() + i * words_; }
  std::uint64_t* row(std::size_t i) { return data_.data() + i * words_; }

  bool bit(std::size_t i, std::size_t j) const {
    return (row(i)[j / 64] >> (j % 64)) & 1u;
  }
  void set_bit(std::size_t i, std::size_t j, bool value) {
    std::uint64_t& w = row(i)[j / 64];
    const std::uint64_t m = std::uint64_t{1} << (j % 64);
    w = value ? (w | m) : (w & ~m);
  }

  // Mask of the valid bits of the last word of a row.
  std::uint64_t tail_mask() const {
    const std::size_t r = bits_ % 64;
    return r == 0 ? ~std::uint64_t{0} : ((std::uint64_t{1} << r) - 1);
  }

  // Clears the padding bits above K in every row (restores the invariant
  // after raw writes through data()).
  void clear_padding() {
    const std::uint64_t m = tail_mask();
    for (std::size_t i = 0; i < n_; ++i) row(i)[words_ - 1] &= m;
  }

  friend bool operator==(const packed_codes& a, const packed_codes& b) {
    return a.n_ == b.n_ && a.bits_ == b.bits_ && a.data_ == b.data_;
  }
  friend bool operator!=(const packed_codes& a, const packed_codes& b) { return !(a == b); }

 private:
  std::size_t n_ = 0;
  std::size_t bits_ = 0;
  std::size_t words_ = 0;
  std::vector<std::uint64_t> data_;
};

}  // namespace nmhash
