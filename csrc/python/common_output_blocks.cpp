#include "python/output_blocks.h"

#include <cstdlib>
#include <mutex>
#include <vector>

namespace fastconv::bind {
namespace {

// A training step's few largest activations and gradients recur every step; more than this
// many idle blocks would mostly hold memory the process no longer needs.
constexpr std::size_t kMaxCachedBlocks = 4;

struct Block {
  void* p;
  std::size_t bytes;
};

// Capsules die under the GIL, but an op's output may be dropped on another thread's Python
// state too; the lock keeps the list whole either way.
std::mutex g_lock;
std::vector<Block> g_free;  // oldest first

}  // namespace

void* take_output_block(std::size_t bytes) {
  {
    std::lock_guard<std::mutex> hold(g_lock);
    for (std::size_t i = g_free.size(); i-- > 0;)
      if (g_free[i].bytes == bytes) {
        void* p = g_free[i].p;
        g_free.erase(g_free.begin() + static_cast<std::ptrdiff_t>(i));
        return p;
      }
  }
  // aligned_alloc wants a multiple of the alignment; bytes is far from SIZE_MAX here (numpy
  // and new_output checked it fits int64).
  return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
}

py::capsule output_block_owner(void* block, std::size_t bytes) {
  auto* owned = new Block{block, bytes};
  return py::capsule(owned, [](void* raw) {
    auto* b = static_cast<Block*>(raw);
    void* evicted = nullptr;
    {
      std::lock_guard<std::mutex> hold(g_lock);
      if (g_free.size() == kMaxCachedBlocks) {
        evicted = g_free.front().p;
        g_free.erase(g_free.begin());
      }
      g_free.push_back(*b);
    }
    std::free(evicted);
    delete b;
  });
}

std::size_t cached_output_blocks() {
  std::lock_guard<std::mutex> hold(g_lock);
  return g_free.size();
}

std::size_t cached_output_bytes() {
  std::lock_guard<std::mutex> hold(g_lock);
  std::size_t total = 0;
  for (const Block& b : g_free) total += b.bytes;
  return total;
}

}  // namespace fastconv::bind
