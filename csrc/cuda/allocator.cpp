#include "cuda/allocator.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/graph.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeGranule = std::size_t(1) << 20;

// Sizes near SIZE_MAX would wrap to a small block: they stay as asked (cudaMalloc refuses them).
std::size_t round_up(std::size_t n, std::size_t granule) {
  if (n > SIZE_MAX - granule) return n;
  return (n + granule - 1) / granule * granule;
}

using FreeLists = std::unordered_map<std::size_t, std::vector<void*>>;  // rounded size -> blocks

// A block of `size` bytes from `lists`, or nullptr.
void* take(FreeLists& lists, std::size_t size) {
  auto it = lists.find(size);
  if (it == lists.end() || it->second.empty()) return nullptr;
  void* ptr = it->second.back();
  it->second.pop_back();
  return ptr;
}

struct InUse {
  std::size_t size;
  int pool;  // 0: the shared lists; else the capture pool it returns to while that pool lives
};

class CachingAllocator {
 public:
  void* allocate(std::size_t nbytes) {
    if (nbytes == 0) return nullptr;
    const std::size_t size = allocation_size(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    void* ptr = nullptr;
    if (capture_pool_ != 0 && (ptr = take(pools_[capture_pool_], size)) != nullptr) {
      stats_.bytes_in_graph_pools -= size;
      ++stats_.cache_hits;
    } else if ((ptr = take(free_, size)) != nullptr) {
      stats_.bytes_cached -= size;
      ++stats_.cache_hits;
    } else {
      ptr = device_malloc(size);
    }
    in_use_.emplace(ptr, InUse{size, capture_pool_});
    stats_.bytes_in_use += size;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }

  void release(void* ptr) noexcept {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_use_.find(ptr);
    if (it == in_use_.end()) return;  // not ours: a bug upstream, but never crash in a deleter
    const std::size_t size = it->second.size;
    const int pool = it->second.pool;
    in_use_.erase(it);
    stats_.bytes_in_use -= size;
    try {
      auto owner = pool != 0 ? pools_.find(pool) : pools_.end();
      if (owner != pools_.end()) {
        owner->second[size].push_back(ptr);
        stats_.bytes_in_graph_pools += size;
      } else {
        free_[size].push_back(ptr);
        stats_.bytes_cached += size;
      }
    } catch (...) {
      // No memory for the list entry: give the block back to the driver instead of caching it.
      cudaFree(ptr);
      ++stats_.free_calls;
    }
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void begin_capture_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    const int id = next_pool_++;
    pools_[id];  // may throw bad_alloc: nothing changed yet
    capture_pool_ = id;
  }

  int end_capture_pool() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    const int id = capture_pool_;
    capture_pool_ = 0;
    return id;
  }

  // The pool's free blocks join the shared lists (the graph that wrote them is gone, and work
  // queued later runs after its replays); its blocks still in use go there when freed.
  void drop_pool(int pool) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pools_.find(pool);
    if (it == pools_.end()) return;
    for (auto& [size, blocks] : it->second) {
      for (void* p : blocks) {
        stats_.bytes_in_graph_pools -= size;
        try {
          free_[size].push_back(p);
          stats_.bytes_cached += size;
        } catch (...) {
          cudaFree(p);
          ++stats_.free_calls;
        }
      }
    }
    pools_.erase(it);
  }

 private:
  // cudaMalloc, which a capture in the default mode refuses: there the thread is switched to
  // relaxed mode for the call (the new block is the graph's, and never freed while it lives).
  cudaError_t raw_malloc(void** ptr, std::size_t size) {
    if (capture_pool_ == 0) return cudaMalloc(ptr, size);
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    FC_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    const cudaError_t err = cudaMalloc(ptr, size);
    cudaThreadExchangeStreamCaptureMode(&mode);
    return err;
  }

  // Called with mutex_ held.
  void* device_malloc(std::size_t size) {
    void* ptr = nullptr;
    cudaError_t err = raw_malloc(&ptr, size);
    // No release-and-retry during a capture: cudaFree would wait for the device.
    if (err == cudaErrorMemoryAllocation && stats_.bytes_cached > 0 && capture_pool_ == 0) {
      cudaGetLastError();  // clear it; the retry reports its own outcome
      release_cached_locked();
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw DeviceOutOfMemory("DeviceArray: out of memory allocating " + std::to_string(size) +
                              " bytes of GPU memory (" + std::to_string(stats_.bytes_in_use) +
                              " bytes in use by fastconv)");
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      const std::string call = "cudaMalloc of " + std::to_string(size) + " bytes";
      throw_cuda(err, call.c_str(), __FILE__, __LINE__);
    }
    ++stats_.malloc_calls;
    return ptr;
  }

  // Frees every cached block even if one cudaFree fails, then reports the first failure.
  void release_cached_locked() {
    cudaError_t first = cudaSuccess;
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) {
        cudaError_t err = cudaFree(p);
        if (err != cudaSuccess && first == cudaSuccess) first = err;
        ++stats_.free_calls;
      }
    }
    free_.clear();
    stats_.bytes_cached = 0;
    FC_CUDA_CHECK(first);
  }

  std::mutex mutex_;
  FreeLists free_;                           // the shared cache
  std::unordered_map<int, FreeLists> pools_;  // capture pools of live graphs, by id
  std::unordered_map<void*, InUse> in_use_;
  int capture_pool_ = 0;  // the pool of the capture under way, or 0
  int next_pool_ = 1;
  AllocatorStats stats_;
};

// Never destroyed: device arrays that Python frees during interpreter shutdown still return their
// blocks to a live allocator (the driver reclaims everything at process exit anyway).
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

}  // namespace

std::size_t allocation_size(std::size_t nbytes) {
  if (nbytes <= kLargeGranule) return round_up(nbytes, kSmallGranule);
  return round_up(nbytes, kLargeGranule);
}

void* device_allocate(std::size_t nbytes) { return allocator().allocate(nbytes); }
void device_free(void* ptr) { allocator().release(ptr); }
void empty_cache() {
  refuse_in_capture("empty_cache");  // cudaFree waits for the device
  allocator().empty_cache();
}
AllocatorStats allocator_stats() { return allocator().stats(); }
void begin_capture_pool() { allocator().begin_capture_pool(); }
int end_capture_pool() noexcept { return allocator().end_capture_pool(); }
void drop_pool(int pool) noexcept { allocator().drop_pool(pool); }

}  // namespace fastconv::cuda
