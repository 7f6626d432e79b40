// The small fixed network the model-file fuzzer loads into, shared with the
// seed generator: linear 5 -> 8, ReLU, linear 8 -> 6 (6 hashing neurons).
#pragma once

#include "nmhash/nn/linear.hpp"
#include "nmhash/nn/relu.hpp"
#include "nmhash/nn/sequential.hpp"

namespace nmhash_fuzz {

inline void build_model_net(nmhash::nn::sequential<float>& net) {
  net.add(nmhash::nn::linear<float>(5, 8));
  net.add(nmhash::nn::relu<float>());
  net.add(nmhash::nn::linear<float>(8, 6));
  net.build(nmhash::shape4{2, 5});
}

}  // namespace nmhash_fuzz
