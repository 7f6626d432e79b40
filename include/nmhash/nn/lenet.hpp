// The fmnist-dpsh reference backbone `lenet` (shared/protocol.md): conv 5x5
// 32 - ReLU - max-pool 2 - conv 5x5 64 - ReLU - max-pool 2 - fully connected
// 1024 -> 500 - ReLU - hashing layer 500 -> K (no activation), for 1 x 28 x
// 28 inputs.
#pragma once

#include <functional>

#include "nmhash/nn/conv2d.hpp"
#include "nmhash/nn/flatten.hpp"
#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/max_pool2d.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash::nn {

// Builds lenet with a K-bit hashing layer for batches of `batch` images.
// The hashing layer's parameters are in group `hash_group`, the rest in 0.
// `head`, when given, appends layers after the hashing layer (HashNet's
// scaled tanh) before the model is built.
template <class T>
void build_lenet(sequential<T>& net, std::size_t bits, std::size_t batch, int hash_group = 0,
                 const std::function<void(sequential<T>&)>& head = {}) {
  net.add(conv2d<T>(1, 32, conv2d_options{5, 5, 1, 0}));
  net.add(relu<T>());
  net.add(max_pool2d<T>(2));
  net.add(conv2d<T>(32, 64, conv2d_options{5, 5, 1, 0}));
  net.add(relu<T>());
  net.add(max_pool2d<T>(2));
  net.add(flatten<T>());
  net.add(linear<T>(1024, 500));
  net.add(relu<T>());
  net.add(linear<T>(500, bits, init_scheme::xavier_normal), hash_group);
  if (head) head(net);
  net.build(shape4{batch, 1, 28, 28});
}

}  // namespace nmhash::nn
