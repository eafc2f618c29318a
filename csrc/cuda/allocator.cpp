#include "cuda/allocator.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

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

class CachingAllocator {
 public:
  void* allocate(std::size_t nbytes) {
    if (nbytes == 0) return nullptr;
    const std::size_t size = allocation_size(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    void* ptr = nullptr;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      stats_.bytes_cached -= size;
      ++stats_.cache_hits;
    } else {
      ptr = device_malloc(size);
    }
    in_use_.emplace(ptr, size);
    stats_.bytes_in_use += size;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }

  void release(void* ptr) noexcept {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_use_.find(ptr);
    if (it == in_use_.end()) return;  // not ours: a bug upstream, but never crash in a deleter
    const std::size_t size = it->second;
    in_use_.erase(it);
    stats_.bytes_in_use -= size;
    try {
      free_[size].push_back(ptr);
      stats_.bytes_cached += size;
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

 private:
  // Called with mutex_ held.
  void* device_malloc(std::size_t size) {
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation && stats_.bytes_cached > 0) {
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
  std::unordered_map<std::size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  std::unordered_map<void*, std::size_t> in_use_;              // block -> rounded size
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
void empty_cache() { allocator().empty_cache(); }
AllocatorStats allocator_stats() { return allocator().stats(); }

}  // namespace fastconv::cuda
