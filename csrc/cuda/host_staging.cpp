#include "cuda/host_staging.h"

#include <cstring>
#include <mutex>

#include "cuda/device_array.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

constexpr int kSlots = 8;

struct Ring {
  char* pinned = nullptr;  // kSlots * kStagingSlotBytes, held for the life of the process
  cudaEvent_t done[kSlots] = {};
  bool used[kSlots] = {};
  int next = 0;
  bool unavailable = false;  // pinned memory refused once: every copy waits, as before
};

std::mutex g_mutex;
Ring g_ring;  // guarded by g_mutex

// With g_mutex held. False when pinned memory or an event cannot be had.
bool ready_locked() {
  if (g_ring.pinned) return true;
  if (g_ring.unavailable) return false;
  void* p = nullptr;
  if (cudaMallocHost(&p, kSlots * kStagingSlotBytes) != cudaSuccess) {
    cudaGetLastError();  // not an error of anything the user asked for
    g_ring.unavailable = true;
    return false;
  }
  for (int i = 0; i < kSlots; ++i) {
    if (cudaEventCreateWithFlags(&g_ring.done[i], cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      for (int j = 0; j < i; ++j) cudaEventDestroy(g_ring.done[j]);
      cudaFreeHost(p);
      g_ring.unavailable = true;
      return false;
    }
  }
  g_ring.pinned = static_cast<char*>(p);
  return true;
}

}  // namespace

bool stage_to_device(void* dst, const void* src, std::size_t nbytes) {
  if (nbytes > kStagingSlotBytes) return false;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!ready_locked()) return false;
  const int slot = g_ring.next;
  g_ring.next = (slot + 1) % kSlots;
  if (g_ring.used[slot]) {
    // The slot's last copy is long done unless the device is kSlots uploads behind.
    const cudaError_t state = cudaEventQuery(g_ring.done[slot]);
    if (state == cudaErrorNotReady) {
      cudaGetLastError();  // "not ready" is a state, not an error to report later
      FC_CUDA_CHECK(cudaEventSynchronize(g_ring.done[slot]));
    } else {
      FC_CUDA_CHECK(state);
    }
  }
  char* staged = g_ring.pinned + std::size_t(slot) * kStagingSlotBytes;
  std::memcpy(staged, src, nbytes);
  FC_CUDA_CHECK(cudaMemcpyAsync(dst, staged, nbytes, cudaMemcpyHostToDevice, stream()));
  FC_CUDA_CHECK(cudaEventRecord(g_ring.done[slot], stream()));
  g_ring.used[slot] = true;
  return true;
}

}  // namespace fastconv::cuda
