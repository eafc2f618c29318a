// The emulator's runtime API: one device whose memory is host memory, streams and events that
// complete at once (every call runs to its end before it returns), and CUDA's error reporting.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "cuda_runtime.h"
#include "emulator.h"

namespace fc_emu {
namespace {

// What the emulated device says of itself. 16 GiB: far above any test, and a request above it
// fails as cudaMalloc does on a full card.
constexpr std::size_t kDeviceBytes = std::size_t(16) << 30;
constexpr int kL2Bytes = 50 << 20;  // an H100's: sizes fastconv's conv groups (cuda/conv.cu)
constexpr unsigned char kFreshByte = 0xff;  // fresh memory reads as NaN (float) or -1 (int)

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local bool t_replaying = false;
std::atomic<long long> g_launches{0}, g_waits{0};

std::mutex g_memory_mutex;
std::unordered_map<void*, std::size_t> g_blocks;  // live allocations and their sizes
std::size_t g_bytes_in_use = 0;

cudaError_t fail(cudaError_t err) {
  t_last_error = err;
  return err;
}

}  // namespace

[[noreturn]] void fatal(const char* why) {
  std::fputs("fastconv CUDA emulator: ", stderr);
  std::fputs(why, stderr);
  std::fputs("\n", stderr);
  std::abort();
}

void set_last_error(cudaError_t err) { t_last_error = err; }

void count_launch() {
  if (!t_replaying) ++g_launches;
}
void count_wait() { ++g_waits; }

bool set_replaying(bool replaying) {
  const bool was = t_replaying;
  t_replaying = replaying;
  return was;
}

cudaError_t misaligned_launch() { return fail(cudaErrorMisalignedAddress); }

}  // namespace fc_emu

using fc_emu::fail;

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 2; return cudaSuccess;
    case cudaDevAttrL2CacheSize: *value = fc_emu::kL2Bytes; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof(*prop));
  std::snprintf(prop->name, sizeof(prop->name), "fastconv CUDA emulator (CPU)");
  prop->totalGlobalMem = fc_emu::kDeviceBytes;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 2;
  prop->maxThreadsPerBlock = 1024;
  prop->warpSize = 32;
  prop->l2CacheSize = fc_emu::kL2Bytes;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }

cudaError_t cudaDeviceSynchronize() {
  if (fc_emu::refused_device_sync()) return cudaErrorStreamCaptureUnsupported;
  fc_emu::count_wait();
  return cudaSuccess;
}

extern "C" __attribute__((visibility("default"))) void fc_emu_counts(long long* launches,
                                                                     long long* waits) {
  *launches = fc_emu::g_launches.load();
  *waits = fc_emu::g_waits.load();
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = fc_emu::t_last_error;
  fc_emu::t_last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() { return fc_emu::t_last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent:
      return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, std::size_t size) {
  using namespace fc_emu;
  if (refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  if (size > kDeviceBytes - g_bytes_in_use) return fail(cudaErrorMemoryAllocation);
  // 256-byte alignment, as cudaMalloc guarantees; the size rounded up to match aligned_alloc.
  void* p = std::aligned_alloc(256, (size + 255) / 256 * 256);
  if (!p) return fail(cudaErrorMemoryAllocation);
  std::memset(p, kFreshByte, size);  // an element read before any kernel wrote it shows up
  try {
    g_blocks.emplace(p, size);
  } catch (const std::bad_alloc&) {
    std::free(p);
    return fail(cudaErrorMemoryAllocation);
  }
  g_bytes_in_use += size;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  using namespace fc_emu;
  if (refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  auto it = g_blocks.find(ptr);
  if (it == g_blocks.end()) return fail(cudaErrorInvalidValue);  // never allocated, or freed twice
  g_bytes_in_use -= it->second;
  g_blocks.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, std::size_t size) {
  if (fc_emu::refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = size == 0 ? nullptr : std::malloc(size);
  return size == 0 || *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  if (fc_emu::refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (fc_emu::refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  fc_emu::count_wait();  // synchronous: the host waits for the device's queued work
  return cudaMemcpyAsync(dst, src, count, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidValue);
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  // In a capture the source is read when the graph runs, as a GPU reads it.
  return fc_emu::run_or_record(stream, [dst, src, count] {
    std::memmove(dst, src, count);
    return cudaSuccess;
  });
}

cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (!dst) return fail(cudaErrorInvalidValue);
  return fc_emu::run_or_record(stream, [dst, value, count] {
    std::memset(dst, value, count);
    return cudaSuccess;
  });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream) return fail(cudaErrorInvalidValue);
  *stream = new (std::nothrow) CUstream_st{flags};
  return *stream ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == cudaStreamLegacy || stream == cudaStreamPerThread || !stream)
    return fail(cudaErrorInvalidResourceHandle);
  fc_emu::drop_capture(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (fc_emu::refused_sync(stream)) return cudaErrorStreamCaptureUnsupported;
  fc_emu::count_wait();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  *event = new (std::nothrow) CUevent_st{flags};
  return *event ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  using fc_emu::Route;
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  const Route r = fc_emu::route(stream);
  if (r == Route::Refused) return cudaPeekAtLastError();
  // Recorded in a capture, the event marks work that has not run: nothing may wait for it.
  event->captured = r == Route::Record;
  // Every call runs to its end before returning, so the host clock now is when the work queued
  // before the event finished: what a GPU's timing events measure.
  event->at_ms = event->captured ? -1.0
                                 : std::chrono::duration<double, std::milli>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (fc_emu::refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (event && event->captured) return fail(cudaErrorCapturedEvent);
  fc_emu::count_wait();
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (fc_emu::refused_during_capture()) return cudaErrorStreamCaptureUnsupported;
  if (event && event->captured) return fail(cudaErrorCapturedEvent);
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

// As the runtime: both events recorded (outside a capture) and made with timing.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  if (!start || !end || (start->flags | end->flags) & cudaEventDisableTiming)
    return fail(cudaErrorInvalidResourceHandle);
  if (start->at_ms < 0 || end->at_ms < 0) return fail(cudaErrorInvalidResourceHandle);
  *ms = static_cast<float>(end->at_ms - start->at_ms);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
