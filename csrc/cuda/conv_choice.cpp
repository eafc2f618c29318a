#include "cuda/conv_choice.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "cuda/context.h"
#include "cuda/graph.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

constexpr int kRounds = 3;
constexpr unsigned kCandidates = 4;

std::atomic<bool> g_autotune{false};

// What the timings are remembered by: the shape, what the call computes, and the math mode.
struct Key {
  ConvPass pass;
  Conv2dShape s;
  bool need_dx, tf32;
  bool operator==(const Key& o) const {
    const Conv2dShape& a = s;
    const Conv2dShape& b = o.s;
    return pass == o.pass && need_dx == o.need_dx && tf32 == o.tf32 && a.n == b.n &&
           a.c == b.c && a.h == b.h && a.w == b.w && a.k == b.k && a.kh == b.kh &&
           a.kw == b.kw && a.sh == b.sh && a.sw == b.sw && a.ph == b.ph && a.pw == b.pw &&
           a.dh == b.dh && a.dw == b.dw;
  }
};

// A few dozen shapes in a network at most: a list searched in order is plenty.
std::mutex g_mutex;
std::vector<ConvTiming> g_table;

const ConvTiming* find(const Key& key) {
  for (const ConvTiming& t : g_table)
    if (key == Key{t.pass, t.shape, t.need_dx, t.tf32}) return &t;
  return nullptr;
}

// Two timing events, destroyed however the measurement ends.
class EventPair {
 public:
  EventPair() {
    FC_CUDA_CHECK(cudaEventCreateWithFlags(&start_, cudaEventDefault));
    const cudaError_t err = cudaEventCreateWithFlags(&stop_, cudaEventDefault);
    if (err != cudaSuccess) {
      cudaEventDestroy(start_);
      FC_CUDA_CHECK(err);
    }
  }
  ~EventPair() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;

  // Milliseconds the device spent on what run() queues.
  template <class F>
  double time(F&& run) {
    FC_CUDA_CHECK(cudaEventRecord(start_, stream()));
    run();
    FC_CUDA_CHECK(cudaEventRecord(stop_, stream()));
    FC_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    FC_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

ConvTiming measure(const Key& key, unsigned candidates,
                   const std::function<void(unsigned)>& run) {
  ConvTiming t{key.pass, key.s, key.need_dx, key.tf32, 0, std::vector<double>(kCandidates, -1.0)};
  std::vector<std::vector<double>> ms(kCandidates);
  EventPair events;
  for (unsigned c = 0; c < kCandidates; ++c)
    if (candidates >> c & 1u) run(c);  // warm-up: plans, workspaces, caches
  for (int round = 0; round < kRounds; ++round)
    for (unsigned c = 0; c < kCandidates; ++c)
      if (candidates >> c & 1u) ms[c].push_back(events.time([&] { run(c); }));
  for (unsigned c = 0; c < kCandidates; ++c) {
    if (ms[c].empty()) continue;
    std::sort(ms[c].begin(), ms[c].end());
    t.median_ms[c] = ms[c][ms[c].size() / 2];
    if (t.median_ms[c] < t.median_ms[t.chosen]) t.chosen = c;  // ties keep the lower
  }
  return t;
}

}  // namespace

void set_conv2d_autotune(bool on) { g_autotune.store(on); }
bool conv2d_autotune() { return g_autotune.load(); }

void conv2d_run_autotuned(ConvPass pass, const Conv2dShape& s, bool need_dx, unsigned candidates,
                          const std::function<void(unsigned)>& run) {
  candidates |= 1u;
  if (!g_autotune.load()) {
    run(0);
    return;
  }
  const Key key{pass, s, need_dx, tf32()};
  unsigned chosen = 0;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (const ConvTiming* t = find(key)) {
      known = true;
      chosen = candidates >> t->chosen & 1u ? t->chosen : 0;
    }
  }
  if (!known && !capturing() && candidates != 1u) {
    // Timed without the lock: the runs take milliseconds, and fastconv's callers hold the GIL
    // anyway (two threads timing one shape would both store; the first entry stays).
    ConvTiming t = measure(key, candidates, run);
    chosen = t.chosen;
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!find(key)) g_table.push_back(std::move(t));
  }
  run(chosen);  // after timing too: the call's result comes from the kernel later calls run
}

std::vector<ConvTiming> conv2d_autotune_table() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_table;
}

void clear_conv2d_autotune_table() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_table.clear();
}

void remember_conv2d_choice(const ConvTiming& t) {
  const Key key{t.pass, t.shape, t.need_dx, t.tf32};
  std::lock_guard<std::mutex> lock(g_mutex);
  for (ConvTiming& old : g_table)
    if (key == Key{old.pass, old.shape, old.need_dx, old.tf32}) {
      old = t;
      return;
    }
  g_table.push_back(t);
}

}  // namespace fastconv::cuda
