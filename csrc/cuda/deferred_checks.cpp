#include "cuda/deferred_checks.h"

#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/device_array.h"
#include "cuda/fill.h"
#include "cuda/graph.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

using Message = std::shared_ptr<const BadPositionMessage>;

struct Pending {
  int slot;
  Message message;
  bool eager;  // the slot is free once read; a graph's slot stays the graph's
};

std::mutex g_mutex;
// The ledger: kMaxDeferred int64 slots, made on first use and held for the life of the process
// (like cuBLAS's workspace). Every slot that is not pending holds kNoBadPosition.
std::int64_t* g_slots = nullptr;
std::vector<int> g_free;              // slots held by nobody
std::vector<Pending> g_pending;       // to read at the next check, in the order claimed
std::vector<bool> g_is_pending;       // per slot: in g_pending (a graph arms a slot once)
std::vector<int> g_freed_by_graphs;   // pending slots of destroyed graphs: free once read
CapturedChecks* g_capture = nullptr;  // the set being captured into, if any
std::int64_t* g_found = nullptr;      // pinned host copy of the ledger (or nullptr: pageable)
bool g_found_tried = false;

// With g_mutex held.
void ensure_ledger_locked() {
  if (g_slots) return;
  void* p = device_allocate(sizeof(std::int64_t) * kMaxDeferred);
  fill(static_cast<std::int64_t*>(p), kMaxDeferred, kNoBadPosition);
  g_free.reserve(kMaxDeferred);
  for (int s = static_cast<int>(kMaxDeferred) - 1; s >= 0; --s) g_free.push_back(s);
  g_is_pending.assign(kMaxDeferred, false);
  g_slots = static_cast<std::int64_t*>(p);
}

// With g_mutex held. Where the ledger is read to: pinned memory, so that its copy does not make
// the host wait by itself (a copy to pageable memory does); `spare` where none could be had.
std::int64_t* found_buffer(std::vector<std::int64_t>& spare) {
  if (!g_found_tried) {
    g_found_tried = true;
    void* p = nullptr;
    if (cudaMallocHost(&p, sizeof(std::int64_t) * kMaxDeferred) == cudaSuccess)
      g_found = static_cast<std::int64_t*>(p);
    else
      cudaGetLastError();  // not an error of anything the user asked for
  }
  if (g_found) return g_found;
  spare.resize(static_cast<std::size_t>(kMaxDeferred));
  return spare.data();
}

// With g_mutex held. Reads and resets the pending slots, and copies `nbytes` from device `src` to
// host `dst` if asked, with one wait; returns the first error's message in the order claimed, or
// "" (every message is non-empty).
std::string drain_locked(void* dst = nullptr, const void* src = nullptr, std::size_t nbytes = 0) {
  if (nbytes) refuse_in_capture("a copy to the host");
  if (g_pending.empty()) {
    if (nbytes == 0) return "";
    FC_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()));
    FC_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return "";
  }
  refuse_in_capture("reading back the data checks of queued kernels");
  std::vector<Pending> pending;
  pending.swap(g_pending);
  int top = 0;
  for (const Pending& p : pending) top = p.slot + 1 > top ? p.slot + 1 : top;
  std::vector<std::int64_t> spare;
  std::int64_t* found = found_buffer(spare);
  FC_CUDA_CHECK(cudaMemcpyAsync(found, g_slots, std::size_t(top) * sizeof(std::int64_t),
                                cudaMemcpyDeviceToHost, stream()));
  if (nbytes) FC_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()));
  FC_CUDA_CHECK(cudaStreamSynchronize(stream()));
  // Every slot below `top` that is not pending holds kNoBadPosition already, so one fill resets
  // them all; it is queued before any later kernel can write them.
  fill(g_slots, top, kNoBadPosition);
  std::string error;
  for (const Pending& p : pending) {
    g_is_pending[static_cast<std::size_t>(p.slot)] = false;
    if (p.eager) g_free.push_back(p.slot);
    const std::int64_t at = found[p.slot];
    if (error.empty() && at != kNoBadPosition) error = (*p.message)(at);
  }
  for (int s : g_freed_by_graphs) g_free.push_back(s);
  g_freed_by_graphs.clear();
  return error;
}

unsigned long long* slot_address(int slot) {
  return reinterpret_cast<unsigned long long*>(g_slots + slot);
}

}  // namespace

unsigned long long* defer_check(BadPositionMessage message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensure_ledger_locked();
  auto shared = std::make_shared<const BadPositionMessage>(std::move(message));
  if (g_capture) {
    if (g_free.empty())
      throw std::runtime_error("a captured step may make at most " +
                               std::to_string(kMaxDeferred) + " deferred data checks");
    const int slot = g_free.back();
    g_capture->claims_.emplace_back(slot, std::move(shared));
    g_free.pop_back();
    return slot_address(slot);
  }
  if (g_free.empty()) {
    const std::string error = drain_locked();
    if (!error.empty()) throw std::invalid_argument(error);
  }
  const int slot = g_free.back();
  g_pending.push_back({slot, std::move(shared), true});
  g_free.pop_back();
  g_is_pending[static_cast<std::size_t>(slot)] = true;
  return slot_address(slot);
}

void check_deferred() {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    error = drain_locked();
  }
  if (!error.empty()) throw std::invalid_argument(error);
}

void copy_to_host_checked(void* dst, const void* src, std::size_t nbytes) {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    error = drain_locked(dst, src, nbytes);
  }
  if (!error.empty()) throw std::invalid_argument(error);
}

void begin_deferred_capture() {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensure_ledger_locked();
  g_capture = new CapturedChecks();
}

std::unique_ptr<CapturedChecks> end_deferred_capture() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::unique_ptr<CapturedChecks> done(g_capture);
  g_capture = nullptr;
  return done;
}

void CapturedChecks::arm() const {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const auto& [slot, message] : claims_) {
    if (g_is_pending[static_cast<std::size_t>(slot)]) continue;  // an earlier launch's, unread
    g_pending.push_back({slot, message, false});
    g_is_pending[static_cast<std::size_t>(slot)] = true;
  }
}

// A pending slot keeps its message (shared) and is read at the next check as usual: an error a
// replay found is not lost with the graph.
CapturedChecks::~CapturedChecks() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const auto& c : claims_) {
    if (g_is_pending[static_cast<std::size_t>(c.first)])
      g_freed_by_graphs.push_back(c.first);
    else
      g_free.push_back(c.first);
  }
}

}  // namespace fastconv::cuda
