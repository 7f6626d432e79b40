// The engine of the test-only SIMT execution layer: one thread block of a
// CUDA kernel runs on one OS thread as one fiber per CUDA thread (ucontext),
// switching at barriers. __syncthreads() waits for every live thread of the
// block; warp intrinsics wait for every lane of their mask. A block whose
// live threads all wait on barriers that can never complete is reported as
// a deadlock instead of hanging.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#define NMHASH_SIMT_NOINLINE __attribute__((noinline))

namespace nmhash::simt {

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  unsigned count() const { return x * y * z; }
};

class simt_error : public std::runtime_error {
 public:
  explicit simt_error(const std::string& what) : std::runtime_error(what) {}
};

class block;

// Per-fiber state: the CUDA thread's coordinates and scheduling status.
struct fiber {
  dim3 thread_idx;
  unsigned linear = 0;  // threadIdx.x + threadIdx.y * blockDim.x + ...
  ucontext_t ctx{};
  std::unique_ptr<unsigned char[]> stack;
  bool done = false;
  // What the fiber waits for: nothing, the block barrier, or a warp
  // barrier of the given generation.
  enum class wait { none, block, warp } waiting = wait::none;
  std::uint64_t wait_generation = 0;
};

// Per-warp rendezvous for warp-synchronous intrinsics.
struct warp_state {
  std::uint64_t slots[32] = {};
  std::uint32_t arrived = 0;    // lanes arrived at the current barrier
  std::uint32_t expected = 0;   // the mask of the current barrier
  std::uint64_t generation = 0;
};

class block {
 public:
  block(dim3 grid, dim3 block_dim, dim3 block_idx, std::size_t dynamic_shared,
        std::size_t stack_bytes)
      : grid_(grid), dim_(block_dim), idx_(block_idx), dynamic_shared_(dynamic_shared + 16),
        fibers_(block_dim.count()), warps_((block_dim.count() + 31) / 32) {
    for (unsigned z = 0; z < dim_.z; ++z)
      for (unsigned y = 0; y < dim_.y; ++y)
        for (unsigned x = 0; x < dim_.x; ++x) {
          fiber& f = fibers_[x + dim_.x * (y + dim_.y * z)];
          f.thread_idx = dim3(x, y, z);
          f.linear = x + dim_.x * (y + dim_.y * z);
          init_context(f, stack_bytes);
        }
  }

  // Runs body() once per CUDA thread of the block.
  void run(const std::function<void()>& body) {
    body_ = &body;
    block* previous = current_block();
    current_block() = this;
    for (fiber& f : fibers_) {
      const auto p = reinterpret_cast<std::uintptr_t>(this);
      makecontext(&f.ctx, reinterpret_cast<void (*)()>(&block::entry), 2,
                  static_cast<unsigned>(p & 0xFFFFFFFFu), static_cast<unsigned>(p >> 32));
    }
    std::size_t live = fibers_.size();
    while (live > 0) {
      bool progressed = false;
      for (fiber& f : fibers_) {
        if (f.done || f.waiting != fiber::wait::none) continue;
        current_ = &f;
        swapcontext(&scheduler_, &f.ctx);
        current_ = nullptr;
        progressed = true;
        if (pending_error_) break;
        if (f.done) --live;
      }
      if (pending_error_) break;
      if (live > 0 && !release_block_barrier(live) && !progressed)
        fail("deadlock: every live thread waits at a barrier that cannot complete "
             "(__syncthreads in divergent code, or a warp intrinsic whose mask names an exited lane)");
    }
    current_block() = previous;
    if (pending_error_) std::rethrow_exception(pending_error_);
  }

  // ---- called from inside a fiber ----
  const fiber& self() const { return *current_; }
  dim3 grid_dim() const { return grid_; }
  dim3 block_dim() const { return dim_; }
  dim3 block_idx() const { return idx_; }
  unsigned char* dynamic_shared() { return dynamic_shared_.data(); }
  std::size_t dynamic_shared_bytes() const { return dynamic_shared_.size() - 16; }

  void syncthreads() {
    fiber& f = *current_;
    f.waiting = fiber::wait::block;
    ++block_arrived_;
    yield();
  }

  // __syncthreads_count: a barrier that also sums pred over the block.
  int syncthreads_count(int pred) {
    const unsigned slot = reduce_parity_;
    reduce_sum_[slot] += pred != 0;
    syncthreads();
    const int total = reduce_sum_[slot];
    // The second barrier keeps the sum alive until every thread has read it;
    // the next reduction uses the other slot.
    syncthreads();
    if (current_->linear == 0) {
      reduce_sum_[slot] = 0;
      reduce_parity_ ^= 1u;
    }
    syncthreads();
    return total;
  }

  // Warp rendezvous: every lane of `mask` deposits `value`, waits until all
  // of them have, then reads the warp's slots through `read`.
  template <class Read>
  auto warp_exchange(std::uint32_t mask, std::uint64_t value, Read read) {
    fiber& f = *current_;
    const unsigned lane = f.linear % 32;
    warp_state& w = warps_[f.linear / 32];
    if (!(mask >> lane & 1u)) fail("warp intrinsic called by lane " + std::to_string(lane) +
                                   " that is not in its mask");
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1u) && (f.linear / 32) * 32 + l >= fibers_.size())
        fail("warp intrinsic mask names lane " + std::to_string(l) + " beyond the block");
    w.slots[lane] = value;
    warp_barrier(w, mask, lane);
    const auto result = read(w.slots);
    warp_barrier(w, mask, lane);
    return result;
  }

  [[noreturn]] void fail(const std::string& what) {
    throw simt_error("simt: block (" + std::to_string(idx_.x) + "," + std::to_string(idx_.y) +
                     "," + std::to_string(idx_.z) + "): " + what);
  }

  static block*& current_block() {
    static thread_local block* b = nullptr;
    return b;
  }

 private:
  // Kept out of the constructor's loops: getcontext() returns twice as far
  // as the compiler knows, which would clobber the loop variables.
  NMHASH_SIMT_NOINLINE void init_context(fiber& f, std::size_t stack_bytes) {
    f.stack.reset(new unsigned char[stack_bytes]);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = stack_bytes;
    f.ctx.uc_link = &scheduler_;
  }

  static void entry(unsigned lo, unsigned hi) {
    block* b = reinterpret_cast<block*>(static_cast<std::uintptr_t>(hi) << 32 | lo);
    try {
      (*b->body_)();
    } catch (...) {
      b->pending_error_ = std::current_exception();
    }
    b->current_->done = true;
  }

  void yield() { swapcontext(&current_->ctx, &scheduler_); }

  void warp_barrier(warp_state& w, std::uint32_t mask, unsigned lane) {
    fiber& f = *current_;
    if (w.arrived == 0) w.expected = mask;
    else if (w.expected != mask) fail("lanes of one warp called a warp intrinsic with different masks");
    w.arrived |= 1u << lane;
    const std::uint64_t gen = w.generation;
    if (w.arrived == w.expected) {
      w.arrived = 0;
      ++w.generation;
      for (unsigned l = 0; l < 32; ++l)
        if (w.expected >> l & 1u) {
          fiber& o = fibers_[(f.linear / 32) * 32 + l];
          if (o.waiting == fiber::wait::warp && o.wait_generation == gen) o.waiting = fiber::wait::none;
        }
      return;
    }
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1u) && fibers_[(f.linear / 32) * 32 + l].done)
        fail("warp intrinsic waits for lane " + std::to_string(l) + ", which has exited");
    f.waiting = fiber::wait::warp;
    f.wait_generation = gen;
    yield();
  }

  // Releases __syncthreads() once every live thread has arrived.
  bool release_block_barrier(std::size_t live) {
    if (block_arrived_ == 0 || block_arrived_ < live) return false;
    block_arrived_ = 0;
    for (fiber& f : fibers_)
      if (f.waiting == fiber::wait::block) f.waiting = fiber::wait::none;
    return true;
  }

  dim3 grid_, dim_, idx_;
  std::vector<unsigned char> dynamic_shared_;
  std::vector<fiber> fibers_;
  std::vector<warp_state> warps_;
  ucontext_t scheduler_{};
  fiber* current_ = nullptr;
  const std::function<void()>* body_ = nullptr;
  std::size_t block_arrived_ = 0;
  int reduce_sum_[2] = {0, 0};
  unsigned reduce_parity_ = 0;
  std::exception_ptr pending_error_;
};

}  // namespace nmhash::simt
