// A training step captured once as a CUDA graph and replayed: the machinery under
// fastconv.graph_step. Everything fastconv queues goes on one stream, so capturing that stream
// records a whole step (kernels, cuBLAS calls, copies) as one graph that a single launch replays.
//
// What a capture must not do, and how each part of fastconv keeps to it:
// - wait for the device or copy host memory (a replay would not repeat the wait, and would read
//   whatever the host buffer holds then): the waiting calls refuse with a clear error
//   (refuse_in_capture); the step's inputs are copied into the graph's own buffers before each
//   replay instead;
// - cudaMalloc in the default capture mode: the allocator switches the thread to relaxed mode for
//   it, and the memory the captured step allocates belongs to the graph's own pool
//   (allocator.h), never handed to code outside the graph while the graph lives, since every
//   replay writes into it again;
// - claim deferred-check slots per launch: the graph's slots are claimed once, at capture, and
//   armed again by every launch (deferred_checks.h).
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>

namespace fastconv::cuda {

// True between begin_capture and end_capture/abandon_capture.
bool capturing();

// Throws std::runtime_error naming `what` when a capture is under way: for the calls that wait for
// the device or copy host data.
void refuse_in_capture(const char* what);

class CapturedChecks;  // deferred_checks.cpp: the ledger slots a graph's kernels write

class Graph {
 public:
  Graph(cudaGraphExec_t exec, int pool, std::unique_ptr<CapturedChecks> checks);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Queues one replay on stream() and returns without waiting; the data checks its kernels make
  // are raised at the next read from the device, as for eager ops.
  void launch();

 private:
  cudaGraphExec_t exec_;
  int pool_;
  std::unique_ptr<CapturedChecks> checks_;
};

// Starts capturing stream(); the stream, the cuBLAS handle and the check ledger are made first
// (making them inside a capture would be refused). Throws if a capture is already under way.
void begin_capture();
// Ends the capture and instantiates its graph (a CudaError if the capture was invalidated).
std::unique_ptr<Graph> end_capture();
// Ends a capture that failed part way (the function being captured raised): the graph is dropped
// and the stream is usable again. Never throws.
void abandon_capture() noexcept;

}  // namespace fastconv::cuda
