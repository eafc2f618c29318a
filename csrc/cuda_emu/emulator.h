// What the emulator's own files share (not seen by fastconv's sources).
#pragma once
#include <memory>
#include <vector>

#include "cuda_runtime.h"

struct Capture;  // capture.cpp: the work recorded so far on one stream, and how it began

struct CUstream_st {
  unsigned flags;
  Capture* capture = nullptr;  // while the stream captures
};
struct CUevent_st {
  unsigned flags;
  bool captured = false;  // last recorded in a capturing stream: no completion to wait for
  double at_ms = -1.0;    // host clock at the last record (the work before it has run): < 0 never
};

namespace fc_emu {

// A misuse the GPU would answer with a hang or undefined behaviour: print why and abort, since
// the process cannot go on meaningfully (the fibers of a block cannot be unwound).
[[noreturn]] void fatal(const char* why);

// What the host asked of the device: kernel launches, and the calls that make the host wait for
// it (a stream, event or device synchronisation, a synchronous copy). The same host code runs on
// a GPU, so these counts are a GPU's too; benchmarks/launch_count.py reads them through
// fc_emu_counts (exported by the emulator build of _cuda). A graph launch is one launch: the
// kernels it replays are not counted (the host launched the graph, not them).
void count_launch();
void count_wait();
// True while this thread replays a graph (and count_launch ignores the kernels).
bool set_replaying(bool replaying);  // returns the previous value

// The error cudaGetLastError returns next on this thread.
void set_last_error(cudaError_t err);

// The calls CUDA refuses during a capture (allocation, freeing, synchronous copies, waits): true
// if this thread may not make them now, with cudaErrorStreamCaptureUnsupported set and the
// captures concerned invalidated. A capture begun in Global or ThreadLocal mode on this thread,
// or in Global mode on any thread, forbids them unless this thread's mode is Relaxed
// (cudaThreadExchangeStreamCaptureMode).
bool refused_during_capture();
// The same for a wait on `stream`, which is refused on a capturing stream in every mode.
bool refused_sync(cudaStream_t stream);
// The same for cudaDeviceSynchronize, which waits for every stream: refused, in every mode, while
// any stream captures (and every capture invalidated).
bool refused_device_sync();
// Ends a capture on a stream being destroyed, discarding what it recorded.
void drop_capture(cudaStream_t stream);
// Ends the capture on `stream` and returns its work; null with *err set (and the last error) where
// the stream does not capture, the capture is another thread's or it was invalidated (then ended).
std::shared_ptr<const std::vector<Op>> end_capture(cudaStream_t stream, cudaError_t* err);
// Runs `work` now, or records it where `stream` captures; returns what it or the refusal gave.
template <typename F>
cudaError_t run_or_record(cudaStream_t stream, F work) {
  switch (route(stream)) {
    case Route::Refused: return cudaPeekAtLastError();
    case Route::Run: return work();
    case Route::Record: break;
  }
  Op op;
  try {
    op = std::move(work);
  } catch (...) {
    invalidate(stream, cudaErrorMemoryAllocation);
    return cudaErrorMemoryAllocation;
  }
  return record(stream, std::move(op));
}
// A graph of `ops` (graph.cpp); null when out of memory.
cudaGraph_t new_graph(std::shared_ptr<const std::vector<Op>> ops);

}  // namespace fc_emu
