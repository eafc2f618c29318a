#include "cpu/threads.h"

#include <omp.h>

#include <atomic>
#include <stdexcept>

#include "fastconv/text.h"

namespace fastconv::cpu {
namespace {

int clamp_threads(int n) { return n < 1 ? 1 : n > kMaxThreads ? kMaxThreads : n; }

// Starts at what OpenMP would use (OMP_NUM_THREADS, else the cores), read when _C loads.
std::atomic<int> g_threads{clamp_threads(omp_get_max_threads())};
std::atomic<int> g_pause_result{0};

}  // namespace

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument(
        text::cat("n must be between 1 and ", kMaxThreads, "; got ", n));
  g_threads.store(n, std::memory_order_relaxed);
}

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

int team(index_t work) {
  const int n = num_threads();
  return work < n ? (work < 1 ? 1 : static_cast<int>(work)) : n;
}

int measured_team() {
  int got = 0;
#pragma omp parallel num_threads(team(kMaxThreads))
  {
#pragma omp single
    got = omp_get_num_threads();
  }
  return got;
}

int before_fork() {
  const int r = omp_pause_resource_all(omp_pause_soft);
  g_pause_result.store(r, std::memory_order_relaxed);
  return r;
}

void after_fork_in_child() {
  if (g_pause_result.load(std::memory_order_relaxed) != 0)
    g_threads.store(1, std::memory_order_relaxed);
}

}  // namespace fastconv::cpu
