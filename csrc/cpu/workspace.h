// Scratch memory for the CPU kernels, reserved by the calling thread before any parallel region.
//
// No C++ exception may leave an OpenMP region (it would call std::terminate), so nothing inside
// a region allocates: the calling thread sizes every thread's slot with checked arithmetic and
// reserves them all at once, and a failure is an OutOfMemory on the calling thread, which
// pybind11 turns into a MemoryError saying how many bytes were asked for and for what.
// Buffers outlive the call (a training step would otherwise page-fault its scratch in again every
// time) and belong to the calling thread, so concurrent Python threads never share one.
#pragma once
#include <omp.h>

#include <cstddef>
#include <new>
#include <string>

#include "fastconv/common.h"

namespace fastconv::cpu {

class OutOfMemory : public std::bad_alloc {
 public:
  // "<kernel>: out of memory allocating <bytes> bytes of <what>"
  OutOfMemory(const char* kernel, std::size_t bytes, const char* what);
  // A size that does not even fit in 64 bits: "<kernel>: out of memory: <what> needs more than
  // 18446744073709551615 bytes"
  OutOfMemory(const char* kernel, const char* what);
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Scratch size arithmetic for one request: products and sums of counts, or an OutOfMemory naming
// the request when the result would not fit in a size_t.
struct SizeCalc {
  const char* kernel;
  const char* what;
  std::size_t mul(std::size_t a, std::size_t b) const;
  std::size_t add(std::size_t a, std::size_t b) const;
  std::size_t count(index_t v) const;  // a (non-negative) index as a size
};

// `bytes` of buffer `slot` of the calling thread, 64-byte aligned, grown (never shrunk) as
// needed. Slots are independent; a kernel uses the ones it needs for the length of one call.
void* reserve_bytes(std::size_t slot, std::size_t bytes, const SizeCalc& request);

template <typename T>
T* scratch(std::size_t slot, std::size_t count, const SizeCalc& request) {
  return static_cast<T*>(reserve_bytes(slot, request.mul(count, sizeof(T)), request));
}

// One slot of `per_thread` elements for each thread of a team, carved from one buffer reserved
// before the region; inside it, mine() is the calling thread's. Slots start on 64-byte
// boundaries, so two threads never write the same cache line.
template <typename T>
class ThreadSlots {
 public:
  ThreadSlots(std::size_t slot, int threads, std::size_t per_thread, const SizeCalc& request)
      : stride_(request.mul(request.add(per_thread, kLine - 1) / kLine, kLine)),
        base_(scratch<T>(slot, request.mul(stride_, static_cast<std::size_t>(threads)),
                         request)) {}
  T* mine() const { return base_ + static_cast<std::size_t>(omp_get_thread_num()) * stride_; }

 private:
  static constexpr std::size_t kLine = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;
  std::size_t stride_;
  T* base_;
};

}  // namespace fastconv::cpu
