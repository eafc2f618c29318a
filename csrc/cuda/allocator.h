// A caching device allocator: cudaMalloc only when no cached block fits, never cudaFree per step.
//
// A training step allocates and frees the same set of activation and gradient sizes every
// iteration; cudaMalloc/cudaFree synchronise the device and cost tens of microseconds each, so
// freed blocks go to a free list keyed by their rounded size and the next request of that size
// takes one back. Sizes are rounded up to 512 B multiples up to 1 MiB and to whole MiB above,
// so recurring requests land in the same list while a block never wastes more than 512 B (small)
// or 1 MiB (large); a request takes only a block of exactly its rounded size (no splitting).
//
// Reuse without events is safe because every fastconv launch and copy runs on the one stream
// (stream() in device_array.h): a block freed on the host after work was queued that reads it is
// handed out again only to work queued after that, on the same stream, so the device runs the
// two in order. Memory touched by another stream (a DLPack import) is never ours to cache.
//
// A captured CUDA graph (graph.h) writes into the memory its step allocated at every replay, so
// that memory must not serve anyone outside the graph while the graph lives: during a capture,
// blocks come from (and return to) the capture's own pool. A block taken from the shared lists or
// from cudaMalloc then belongs to the pool; blocks freed during the capture go back to it and
// may serve later requests of the same capture (its replays run in the captured order, on one
// stream). When the graph is destroyed its pool's blocks return to the shared lists.
#pragma once
#include <cstddef>
#include <new>
#include <string>
#include <utility>

namespace fastconv::cuda {

// cudaMalloc found no room even after the cache was released: a std::bad_alloc (pybind11 makes
// it a MemoryError) whose text says how many bytes were asked for.
class DeviceOutOfMemory : public std::bad_alloc {
 public:
  explicit DeviceOutOfMemory(std::string what) : what_(std::move(what)) {}
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

struct AllocatorStats {
  std::size_t bytes_in_use = 0;   // rounded sizes of blocks handed out and not yet returned
  std::size_t bytes_cached = 0;   // rounded sizes of blocks in the free lists
  std::size_t peak_bytes_in_use = 0;
  std::size_t malloc_calls = 0;   // cudaMalloc calls that succeeded, ever
  std::size_t free_calls = 0;     // cudaFree calls (empty_cache, or a retry after out-of-memory)
  std::size_t allocations = 0;    // allocate() calls with a non-zero size, ever
  std::size_t cache_hits = 0;     // of those, served from a free list
  std::size_t bytes_in_graph_pools = 0;  // free blocks held by captured graphs (graph.h)
};

// Device memory for at least `nbytes` bytes (256-byte aligned, as cudaMalloc's). nbytes == 0 gives
// nullptr without touching the device. On out-of-memory the cache is released and the cudaMalloc
// retried once before DeviceOutOfMemory is thrown (other failures: CudaError).
void* device_allocate(std::size_t nbytes);
// Returns a block from device_allocate to its free list (nullptr is ignored). Never throws.
void device_free(void* ptr);
// cudaFree every cached block (blocks in use are untouched).
void empty_cache();
AllocatorStats allocator_stats();
// Between these two calls every allocation and free goes to the pool of the capture under way;
// end_capture_pool returns the pool's id, which drop_pool(id) later gives back (never throws).
void begin_capture_pool();
int end_capture_pool() noexcept;
void drop_pool(int pool) noexcept;
// The size a request of nbytes is rounded up to (the free list it uses).
std::size_t allocation_size(std::size_t nbytes);

}  // namespace fastconv::cuda
