// Scratch memory that outlives a call: kernels reuse one growing buffer per thread instead of
// allocating (and page-faulting) per call. Thread-local, so concurrent Python threads never share.
#pragma once
#include <cstddef>
#include <vector>

namespace fastconv::cpu {

template <typename T>
T* scratch(std::size_t slot, std::size_t count) {
  thread_local std::vector<std::vector<T>> buffers;
  if (buffers.size() <= slot) buffers.resize(slot + 1);
  auto& buf = buffers[slot];
  if (buf.size() < count) buf.resize(count);
  return buf.data();
}

}  // namespace fastconv::cpu
