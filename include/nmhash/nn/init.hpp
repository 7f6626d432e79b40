// Seeded parameter initialisation: Kaiming (He) and Xavier (Glorot) normal
// and uniform, for a weight of a given fan-in and fan-out.
#pragma once

#include <cmath>
#include <cstddef>
#include <random>

namespace nmhash::nn {

enum class init_scheme { kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform };

// Fills w[0..n) for a layer with the given fans. Kaiming uses gain sqrt(2)
// (ReLU), Xavier gain 1.
template <class T>
void init_weights(T* w, std::size_t n, std::size_t fan_in, std::size_t fan_out, init_scheme s,
                  std::mt19937_64& gen) {
  const double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  const bool kaiming = s == init_scheme::kaiming_normal || s == init_scheme::kaiming_uniform;
  const double stddev = kaiming ? std::sqrt(2.0 / fi) : std::sqrt(2.0 / (fi + fo));
  if (s == init_scheme::kaiming_normal || s == init_scheme::xavier_normal) {
    std::normal_distribution<double> d(0.0, stddev);
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(d(gen));
  } else {
    const double bound = std::sqrt(3.0) * stddev;
    std::uniform_real_distribution<double> d(-bound, bound);
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(d(gen));
  }
}

}  // namespace nmhash::nn
