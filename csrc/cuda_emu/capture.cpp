// The emulator's stream capture: while a stream captures, the work put on it is appended to its
// Capture instead of running; cudaStreamEndCapture turns the list into a graph (graph.cpp). The
// rules for what a capture refuses are CUDA's (see the runtime API's cudaStreamBeginCapture and
// cudaThreadExchangeStreamCaptureMode): only the legacy-stream rule is kept simpler, as any use of
// the legacy stream during a Global capture (CUDA refuses it where the capturing stream is a
// blocking one).
#include <algorithm>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "cuda_runtime.h"
#include "emulator.h"

struct Capture {
  cudaStreamCaptureMode mode;
  std::thread::id owner;  // the thread that began it
  bool invalidated = false;
  std::shared_ptr<std::vector<fc_emu::Op>> ops;
};

namespace fc_emu {
namespace {

std::mutex g_mutex;                     // guards every Capture and the list below
std::vector<CUstream_st*> g_capturing;  // the streams capturing now
thread_local cudaStreamCaptureMode t_mode = cudaStreamCaptureModeGlobal;

bool legacy(cudaStream_t stream) { return stream == nullptr || stream == cudaStreamLegacy; }

// The per-thread default stream has no handle of its own: one object per thread stands for it.
CUstream_st* resolve(cudaStream_t stream) {
  thread_local CUstream_st per_thread{0};
  if (legacy(stream)) return nullptr;
  return stream == cudaStreamPerThread ? &per_thread : stream;
}

bool valid_mode(int mode) {
  return mode == cudaStreamCaptureModeGlobal || mode == cudaStreamCaptureModeThreadLocal ||
         mode == cudaStreamCaptureModeRelaxed;
}

bool any_global_capture() {
  return std::any_of(g_capturing.begin(), g_capturing.end(),
                     [](CUstream_st* s) { return s->capture->mode == cudaStreamCaptureModeGlobal; });
}

cudaError_t fail(cudaError_t err) {
  set_last_error(err);
  return err;
}

}  // namespace

Route route(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (s && s->capture) {
    if (!s->capture->invalidated) return Route::Record;
    fail(cudaErrorStreamCaptureInvalidated);
    return Route::Refused;
  }
  if (!s && any_global_capture()) {
    // The legacy stream would wait for the capturing work, which has not run.
    for (CUstream_st* c : g_capturing)
      if (c->capture->mode == cudaStreamCaptureModeGlobal) c->capture->invalidated = true;
    fail(cudaErrorStreamCaptureImplicit);
    return Route::Refused;
  }
  return Route::Run;
}

cudaError_t record(cudaStream_t stream, Op op) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (!s || !s->capture) fatal("work recorded on a stream that does not capture");
  try {
    s->capture->ops->push_back(std::move(op));
  } catch (const std::bad_alloc&) {
    s->capture->invalidated = true;
    return fail(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

void invalidate(cudaStream_t stream, cudaError_t err) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (s && s->capture) s->capture->invalidated = true;
  fail(err);
}

bool refused_during_capture() {
  if (t_mode == cudaStreamCaptureModeRelaxed) return false;
  std::lock_guard<std::mutex> lock(g_mutex);
  bool refused = false;
  for (CUstream_st* s : g_capturing) {
    Capture& c = *s->capture;
    if (c.mode == cudaStreamCaptureModeRelaxed) continue;
    const bool mine = c.owner == std::this_thread::get_id();
    if (mine || (t_mode == cudaStreamCaptureModeGlobal && c.mode == cudaStreamCaptureModeGlobal)) {
      c.invalidated = true;
      refused = true;
    }
  }
  if (refused) fail(cudaErrorStreamCaptureUnsupported);
  return refused;
}

bool refused_sync(cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    CUstream_st* s = resolve(stream);
    if (s && s->capture) {
      s->capture->invalidated = true;
      fail(cudaErrorStreamCaptureUnsupported);
      return true;
    }
  }
  return refused_during_capture();
}

bool refused_device_sync() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_capturing.empty()) return false;
  for (CUstream_st* s : g_capturing) s->capture->invalidated = true;
  fail(cudaErrorStreamCaptureUnsupported);
  return true;
}

void drop_capture(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (!s || !s->capture) return;
  g_capturing.erase(std::find(g_capturing.begin(), g_capturing.end(), s));
  delete s->capture;
  s->capture = nullptr;
}

std::shared_ptr<const std::vector<Op>> end_capture(cudaStream_t stream, cudaError_t* err) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (!s || !s->capture) {
    *err = fail(cudaErrorIllegalState);
    return nullptr;
  }
  std::unique_ptr<Capture> c(s->capture);
  if (c->mode != cudaStreamCaptureModeRelaxed && c->owner != std::this_thread::get_id()) {
    c.release();  // the capture goes on: only its own thread may end it
    *err = fail(cudaErrorStreamCaptureWrongThread);
    return nullptr;
  }
  g_capturing.erase(std::find(g_capturing.begin(), g_capturing.end(), s));
  s->capture = nullptr;
  *err = c->invalidated ? fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess;
  return c->invalidated ? nullptr : std::move(c->ops);
}

}  // namespace fc_emu

using fc_emu::fail;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  using namespace fc_emu;
  if (!valid_mode(mode)) return fail(cudaErrorInvalidValue);
  if (legacy(stream)) return fail(cudaErrorStreamCaptureUnsupported);  // CUDA cannot capture it
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  if (s->capture) return fail(cudaErrorIllegalState);
  try {
    auto c = std::make_unique<Capture>(
        Capture{mode, std::this_thread::get_id(), false, std::make_shared<std::vector<Op>>()});
    g_capturing.push_back(s);
    s->capture = c.release();
  } catch (const std::bad_alloc&) {
    return fail(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  *graph = nullptr;
  cudaError_t err = cudaSuccess;
  auto ops = fc_emu::end_capture(stream, &err);
  if (err != cudaSuccess) return err;
  *graph = fc_emu::new_graph(std::move(ops));
  return *graph ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  using namespace fc_emu;
  if (!status) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_mutex);
  CUstream_st* s = resolve(stream);
  *status = cudaStreamCaptureStatusNone;
  if (!s) return any_global_capture() ? fail(cudaErrorStreamCaptureImplicit) : cudaSuccess;
  if (s->capture)
    *status = s->capture->invalidated ? cudaStreamCaptureStatusInvalidated
                                      : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  if (!mode || !fc_emu::valid_mode(*mode)) return fail(cudaErrorInvalidValue);
  std::swap(*mode, fc_emu::t_mode);
  return cudaSuccess;
}
