// Seeded parameter initialisation: Kaiming (He) and Xavier (Glorot) normal
// and uniform, for a weight of a given fan-in and fan-out, and PyTorch's
// default of nn.Conv2d and nn.Linear (reset_parameters).
#pragma once

#include <cmath>
#include <cstddef>
#include <random>

namespace nmhash::nn {

// pytorch_default: weight and bias uniform in +-1/sqrt(fan_in), what
// kaiming_uniform_(a = sqrt(5)) and the bias rule of nn.Conv2d and
// nn.Linear draw; the others leave biases at zero.
enum class init_scheme { kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform, pytorch_default };

namespace detail {

template <class T>
void fill_uniform(T* w, std::size_t n, double bound, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> d(-bound, bound);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(d(gen));
}

}  // namespace detail

// Fills w[0..n) for a layer with the given fans. Kaiming uses gain sqrt(2)
// (ReLU), Xavier gain 1.
template <class T>
void init_weights(T* w, std::size_t n, std::size_t fan_in, std::size_t fan_out, init_scheme s,
                  std::mt19937_64& gen) {
  const double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  if (s == init_scheme::pytorch_default) return detail::fill_uniform(w, n, 1.0 / std::sqrt(fi), gen);
  const bool kaiming = s == init_scheme::kaiming_normal || s == init_scheme::kaiming_uniform;
  const double stddev = kaiming ? std::sqrt(2.0 / fi) : std::sqrt(2.0 / (fi + fo));
  if (s == init_scheme::kaiming_normal || s == init_scheme::xavier_normal) {
    std::normal_distribution<double> d(0.0, stddev);
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(d(gen));
  } else {
    detail::fill_uniform(w, n, std::sqrt(3.0) * stddev, gen);
  }
}

// Fills the n biases of a layer with the given fan-in: zero, or under
// pytorch_default uniform in +-1/sqrt(fan_in) (drawn after the weights).
template <class T>
void init_biases(T* b, std::size_t n, std::size_t fan_in, init_scheme s, std::mt19937_64& gen) {
  if (s == init_scheme::pytorch_default)
    return detail::fill_uniform(b, n, 1.0 / std::sqrt(static_cast<double>(fan_in)), gen);
  for (std::size_t i = 0; i < n; ++i) b[i] = T(0);
}

}  // namespace nmhash::nn
