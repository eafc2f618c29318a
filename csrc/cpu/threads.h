// The CPU kernels' thread count: one process-wide setting, read by every parallel region.
//
// omp_set_num_threads sets a per-thread OpenMP variable: a count chosen on the main thread does
// not reach a Python threading.Thread. So the count lives here, and every `#pragma omp parallel`
// in csrc/cpu names its team size with num_threads(team(...)) (a test checks the clause is there).
#pragma once
#include "fastconv/common.h"

namespace fastconv::cpu {

// The most threads set_num_threads accepts: far beyond any core count this library is tuned for,
// and low enough that a mistyped count cannot ask libgomp for thousands of thread stacks.
constexpr int kMaxThreads = 1024;

// n in [1, kMaxThreads], else std::invalid_argument naming n.
void set_num_threads(int n);
int num_threads();

// The team for a region with `work` independent items: never more threads than items.
int team(index_t work);

// The threads a parallel region opened now with num_threads(num_threads()) actually gets
// (a test hook: a thread count that is only stored, not used, would pass a round-trip test).
int measured_team();

// Fork safety (GCC's libgomp keeps its idle thread pool across fork(), but the threads are gone
// in the child, whose first parallel region then waits for them forever). before_fork releases
// the calling thread's pool, so a child starts a fresh one; it returns what
// omp_pause_resource_all returned (0: released). If it failed, after_fork_in_child falls back
// to one thread in the child, which never touches the stale pool.
int before_fork();
void after_fork_in_child();

}  // namespace fastconv::cpu
