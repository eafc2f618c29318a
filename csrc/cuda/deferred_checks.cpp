#include "cuda/deferred_checks.h"

#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/device_array.h"
#include "cuda/fill.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

std::mutex g_mutex;
// The ledger: kMaxDeferred int64 slots, made on first use and held for the life of the process
// (like cuBLAS's workspace). Slots [0, pending) are claimed; all others hold kNoBadPosition.
std::int64_t* g_slots = nullptr;
std::vector<BadPositionMessage> g_messages;  // one per claimed slot, in order

// With g_mutex held. Reads and resets the claimed slots; returns the first error's message, or
// "" (every message is non-empty).
std::string drain_locked() {
  if (g_messages.empty()) return "";
  std::vector<BadPositionMessage> messages;
  messages.swap(g_messages);
  const index_t used = static_cast<index_t>(messages.size());
  std::vector<std::int64_t> found(messages.size());
  FC_CUDA_CHECK(cudaMemcpyAsync(found.data(), g_slots, found.size() * sizeof(std::int64_t),
                                cudaMemcpyDeviceToHost, stream()));
  FC_CUDA_CHECK(cudaStreamSynchronize(stream()));
  fill(g_slots, used, kNoBadPosition);  // queued before any later kernel can claim them
  for (std::size_t i = 0; i < found.size(); ++i)
    if (found[i] != kNoBadPosition) return messages[i](found[i]);
  return "";
}

}  // namespace

unsigned long long* defer_check(BadPositionMessage message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_slots) {
    void* p = device_allocate(sizeof(std::int64_t) * kMaxDeferred);
    fill(static_cast<std::int64_t*>(p), kMaxDeferred, kNoBadPosition);
    g_slots = static_cast<std::int64_t*>(p);
  }
  if (static_cast<index_t>(g_messages.size()) == kMaxDeferred) {
    const std::string error = drain_locked();
    if (!error.empty()) throw std::invalid_argument(error);
  }
  g_messages.push_back(std::move(message));
  return reinterpret_cast<unsigned long long*>(g_slots + (g_messages.size() - 1));
}

void check_deferred() {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    error = drain_locked();
  }
  if (!error.empty()) throw std::invalid_argument(error);
}

}  // namespace fastconv::cuda
