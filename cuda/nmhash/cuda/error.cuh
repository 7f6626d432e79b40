// Error reporting of the CUDA half: every CUDA runtime call and kernel
// launch is checked, and a failure throws nmhash::cuda_error carrying the
// CUDA error name and text and the call site.
#pragma once

#include <string>

#include "nmhash/cuda/cuda_api.cuh"

#include "nmhash/core/error.hpp"

namespace nmhash {

class cuda_error : public error {
 public:
  cuda_error(cudaError_t code, const std::string& what) : error(what), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

namespace detail {

inline void cuda_check(cudaError_t code, const char* expr, const char* file, int line) {
  if (code != cudaSuccess)
    throw cuda_error(code, concat(file, ":", line, ": ", expr, " failed: ",
                                  cudaGetErrorName(code), ": ", cudaGetErrorString(code)));
}

}  // namespace detail
}  // namespace nmhash

// Checks a cudaError_t-returning expression; throws nmhash::cuda_error.
#define NMHASH_CUDA_CHECK(expr) ::nmhash::detail::cuda_check((expr), #expr, __FILE__, __LINE__)
