// The emulator's kernel launches (see include/cuda_runtime.h). Blocks run one after another on the
// calling thread. The first block of a launch runs its threads as fibers and notes whether they met
// at a barrier (__syncthreads, or a warp shuffle, which waits for the warp). If they did, the
// launch site's kernel is remembered as synchronising and every block runs as fibers; if not, the
// remaining blocks run their threads one after another, which is hundreds of times cheaper.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "cuda_runtime.h"
#include "emulator.h"
#include "fiber_switch.h"

namespace fc_emu {
namespace {

constexpr int kWarpSize = 32;
constexpr std::size_t kStackBytes = std::size_t(256) << 10;
constexpr std::size_t kGuardBytes = 4096;

thread_local ThreadPlace t_place;

enum class Wait { Running, Block, Warp, Done };

struct Fiber {
  FiberContext context;
  Wait wait = Wait::Running;
  char* stack = nullptr;  // kStackBytes above a guard page; kept for the life of the thread
};

// One OS thread's state for the block it runs. Kernels never launch kernels, so one is enough.
struct BlockRun {
  std::vector<Fiber> fibers;
  std::vector<std::uint64_t> lanes;  // each thread's value in a shuffle
  FiberContext scheduler;
  Body body{};
  int threads = 0;   // in the block
  int current = -1;  // the fiber running, or -1 outside fiber mode
  bool met_barrier = false;
};
thread_local BlockRun t_run;

std::mutex g_sync_mutex;
std::unordered_set<void (*)(void*)> g_synchronising;  // launch sites (kernel + argument types)

// FASTCONV_CUDA_EMULATOR_ORDER=reverse runs the blocks, and the threads within each, last to
// first: a kernel whose result depends on which thread runs first (a race on a GPU) then gives
// other bits than in the default order, and the tests comparing against the CPU see it.
bool reverse_order() {
  static const bool reverse = [] {
    const char* v = std::getenv("FASTCONV_CUDA_EMULATOR_ORDER");
    if (!v || !*v || std::strcmp(v, "forward") == 0) return false;
    if (std::strcmp(v, "reverse") == 0) return true;
    fatal("FASTCONV_CUDA_EMULATOR_ORDER must be forward or reverse");
  }();
  return reverse;
}

int in_order(int k, int count) { return reverse_order() ? count - 1 - k : k; }

uint3 thread_at(int linear, dim3 b) {
  const unsigned i = static_cast<unsigned>(linear);
  return {i % b.x, (i / b.x) % b.y, i / (b.x * b.y)};
}

char* new_stack() {
  void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fatal("mmap of a fiber stack failed");
  mprotect(p, kGuardBytes, PROT_NONE);  // an overflow faults instead of corrupting a neighbour
  return static_cast<char*>(p) + kGuardBytes;
}

void fiber_main() {
  BlockRun& r = t_run;
  const int i = r.current;
  r.body.call(r.body.state);
  r.fibers[i].wait = Wait::Done;
  fiber_switch(&r.fibers[i].context, &r.scheduler);  // never resumed
}

void resume(int i) {
  BlockRun& r = t_run;
  r.current = i;
  t_place.thread = thread_at(i, t_place.block_dim);
  fiber_switch(&r.scheduler, &r.fibers[i].context);
  r.current = -1;
}

// From a fiber: wait at a barrier until the scheduler releases it.
void wait_at(Wait kind) {
  BlockRun& r = t_run;
  const int i = r.current;
  r.met_barrier = true;
  r.fibers[i].wait = kind;
  fiber_switch(&r.fibers[i].context, &r.scheduler);
  t_place.thread = thread_at(i, t_place.block_dim);
}

// Releases the warps whose live threads all wait at a warp barrier, else the whole block if every
// live thread waits at __syncthreads. False when neither holds (a divergent barrier: a deadlock on
// a GPU too).
bool release_waiters() {
  BlockRun& r = t_run;
  bool released = false;
  for (int base = 0; base < r.threads; base += kWarpSize) {
    const int end = base + kWarpSize < r.threads ? base + kWarpSize : r.threads;
    int live = 0, waiting = 0;
    for (int i = base; i < end; ++i) {
      live += r.fibers[i].wait != Wait::Done;
      waiting += r.fibers[i].wait == Wait::Warp;
    }
    if (waiting > 0 && waiting == live) {
      for (int i = base; i < end; ++i)
        if (r.fibers[i].wait == Wait::Warp) r.fibers[i].wait = Wait::Running;
      released = true;
    }
  }
  if (released) return true;
  int live = 0, waiting = 0;
  for (int i = 0; i < r.threads; ++i) {
    live += r.fibers[i].wait != Wait::Done;
    waiting += r.fibers[i].wait == Wait::Block;
  }
  if (waiting == 0 || waiting != live) return false;
  for (int i = 0; i < r.threads; ++i)
    if (r.fibers[i].wait == Wait::Block) r.fibers[i].wait = Wait::Running;
  return true;
}

void run_block_as_fibers() {
  BlockRun& r = t_run;
  if (r.fibers.size() < static_cast<std::size_t>(r.threads)) r.fibers.resize(r.threads);
  r.lanes.assign(r.threads, 0);
  for (int i = 0; i < r.threads; ++i) {
    Fiber& f = r.fibers[i];
    if (!f.stack) f.stack = new_stack();
    fiber_prepare(&f.context, f.stack, kStackBytes, fiber_main);
    f.wait = Wait::Running;
  }
  for (;;) {
    bool any_live = false;
    for (int k = 0; k < r.threads; ++k) {
      const int i = in_order(k, r.threads);
      if (r.fibers[i].wait == Wait::Running) resume(i);
      any_live = any_live || r.fibers[i].wait != Wait::Done;
    }
    if (!any_live) return;
    if (!release_waiters())
      fatal("the threads of a block wait at different barriers (__syncthreads or a warp shuffle "
            "reached by only some of them)");
  }
}

void run_block_in_turn() {
  BlockRun& r = t_run;
  for (int k = 0; k < r.threads; ++k) {
    t_place.thread = thread_at(in_order(k, r.threads), t_place.block_dim);
    r.body.call(r.body.state);
  }
}

bool known_synchronising(void (*site)(void*)) {
  std::lock_guard<std::mutex> lock(g_sync_mutex);
  return g_synchronising.count(site) != 0;
}

}  // namespace

cudaError_t check_configuration(dim3 grid, dim3 block, std::size_t shared_bytes) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  const bool block_ok = block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 &&
                        block.y <= 1024 && block.z <= 64 && threads <= 1024;
  const bool grid_ok = grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu &&
                       grid.y <= 65535 && grid.z <= 65535;
  return block_ok && grid_ok && shared_bytes <= 48 * 1024 ? cudaSuccess
                                                         : cudaErrorInvalidConfiguration;
}

ThreadPlace& here() { return t_place; }

void sync_block() {
  BlockRun& r = t_run;
  if (r.threads == 1) return;
  if (r.current < 0)
    fatal("__syncthreads in a block run without fibers: the launch's first block met no barrier "
          "but a later one did");
  wait_at(Wait::Block);
}

std::uint64_t shfl_xor(std::uint64_t bits, int lane_mask) {
  BlockRun& r = t_run;
  if (r.threads == 1) return bits;  // no partner lane exists
  if (r.current < 0)
    fatal("a warp shuffle in a block run without fibers: the launch's first block met no barrier "
          "but a later one did");
  const int i = r.current;
  r.lanes[i] = bits;
  wait_at(Wait::Warp);  // every live lane has written its value
  const int partner = i - i % kWarpSize + ((i % kWarpSize) ^ (lane_mask & (kWarpSize - 1)));
  const bool there = partner < r.threads && r.fibers[partner].wait != Wait::Done;
  const std::uint64_t got = there ? r.lanes[partner] : bits;
  wait_at(Wait::Warp);  // every lane has read before any writes again
  return got;
}

cudaError_t launch(dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t, Body body) {
  const cudaError_t bad = check_configuration(grid, block, shared_bytes);
  if (bad != cudaSuccess) {
    set_last_error(bad);
    return bad;
  }
  count_launch();
  BlockRun& r = t_run;
  r.body = body;
  r.threads = static_cast<int>(block.x * block.y * block.z);
  t_place.block_dim = block;
  t_place.grid_dim = grid;
  bool fibers = r.threads > 1 && known_synchronising(body.call);
  const unsigned long long blocks = 1ull * grid.x * grid.y * grid.z;
  for (unsigned long long k = 0; k < blocks; ++k) {
    const unsigned long long b = reverse_order() ? blocks - 1 - k : k;
    t_place.block = {static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                     static_cast<unsigned>(b / (1ull * grid.x * grid.y))};
    if (k == 0 && r.threads > 1 && !fibers) {
      // The probe: the first block as fibers, watching for a barrier.
      r.met_barrier = false;
      run_block_as_fibers();
      if (r.met_barrier) {
        fibers = true;
        std::lock_guard<std::mutex> lock(g_sync_mutex);
        g_synchronising.insert(body.call);
      }
    } else if (fibers) {
      run_block_as_fibers();
    } else {
      run_block_in_turn();
    }
  }
  r.threads = 0;
  return cudaSuccess;
}

}  // namespace fc_emu
