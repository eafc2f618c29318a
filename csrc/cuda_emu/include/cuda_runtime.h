// The CUDA emulator's stand-in for <cuda_runtime.h>: the slice of the CUDA runtime that fastconv
// uses, run on the CPU, so that the CUDA module's host code and kernels can be tested on a machine
// without a GPU (FASTCONV_CUDA=EMULATOR; .ci/cuda-emulator). Kernels run one block at a time; a
// block whose threads meet at __syncthreads or a warp shuffle runs its threads as fibers, every
// other block runs its threads one after another. So the emulator checks what a kernel computes,
// its index math and its launch configuration, never its speed, and it cannot see a data race.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the language: qualifiers become plain C++ -------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time on an OS thread, so a per-thread static is the block's shared memory.
#define __shared__ static thread_local

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace fc_emu {

// Where the running CUDA thread is: set by the launcher before each thread's body runs.
struct ThreadPlace {
  uint3 thread{0, 0, 0};
  uint3 block{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
};
ThreadPlace& here();

void sync_block();                            // __syncthreads
std::uint64_t shfl_xor(std::uint64_t bits, int lane_mask);  // one lane's bits out, its partner's in

}  // namespace fc_emu

#define threadIdx (::fc_emu::here().thread)
#define blockIdx (::fc_emu::here().block)
#define blockDim (::fc_emu::here().block_dim)
#define gridDim (::fc_emu::here().grid_dim)

inline void __syncthreads() { ::fc_emu::sync_block(); }

template <typename T>
inline T __shfl_xor_sync(unsigned /*mask: every warp here is whole*/, T v, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(std::uint64_t), "__shfl_xor_sync: at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::fc_emu::shfl_xor(bits, lane_mask);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// Rounded single operations: the emulator is built with -ffp-contract=off, so each is one IEEE op.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __expf(float a) { return std::exp(a); }
inline float __logf(float a) { return std::log(a); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((std::uint64_t(a) * b) >> 32);
}
template <typename T>
inline T __ldg(const T* p) { return *p; }

// Fibers of one block take turns on one OS thread and switch only at a barrier, so a plain
// read-modify-write is atomic here.
template <typename T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <typename T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}

// ---- the runtime API ---------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorCapturedEvent = 907,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventDisableTiming 0x2
#define cudaGraphInstantiateFlagAutoFreeOnLaunch 1
#define cudaGraphInstantiateFlagUpload 2
#define cudaGraphInstantiateFlagDeviceLaunch 4
#define cudaGraphInstantiateFlagUseNodePriority 8

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  int major;
  int minor;
  int multiProcessorCount;
  int l2CacheSize;
  int maxThreadsPerBlock;
  int warpSize;
};

#define CUDART_VERSION 13000

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);

cudaError_t cudaMalloc(void** ptr, std::size_t size);
template <typename T>
inline cudaError_t cudaMalloc(T** ptr, std::size_t size) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), size);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, std::size_t size);  // "pinned": plain host memory here
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t count, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);  // always complete: every call ran to its end
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// Stream capture and graphs (capture.cpp, graph.cpp). While a stream captures, the work put on it
// (kernels, cudaMemcpyAsync, cudaMemsetAsync, cuBLAS calls on a handle set to it) is recorded, not
// run; the calls that would wait for the device or change its memory map are refused as CUDA
// refuses them, and invalidate the capture. A graph launch replays the recorded work in order, at
// once, reading its sources then (as a GPU does), and counts as one launch.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// ---- kernel launches: build_support/emulate_cuda.py rewrites `k<<<g, b, s, st>>>(args)` into
// `::fc_emu::Launch(g, b, s, st).args(args).run([](auto&... a) { k(a...); })` ------------------
namespace fc_emu {

// A kernel body type-erased for the launcher: calls the kernel once for the current thread.
struct Body {
  void (*call)(void* state);
  void* state;
};
// Runs `body` for every thread of the grid and returns cudaSuccess; a bad configuration sets the
// launch error and returns it instead.
cudaError_t launch(dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream, Body body);
cudaError_t check_configuration(dim3 grid, dim3 block, std::size_t shared_bytes);

template <typename T>
bool aligned(const T&) { return true; }
template <typename T>
bool aligned(T* p) {
  if constexpr (std::is_void_v<T>) return true;
  else return reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0;
}
cudaError_t misaligned_launch();  // sets cudaErrorMisalignedAddress as the launch's error

// Where work put on a stream goes (capture.cpp): run now, recorded into the stream's capture, or
// refused (the error set as the last error and the capture invalidated: e.g. the legacy stream
// during a global capture).
enum class Route { Run, Record, Refused };
Route route(cudaStream_t stream);
// One piece of recorded work: run at each replay; returns what a launch of it would report.
using Op = std::function<cudaError_t()>;
// Appends `op` to the capture on `stream` (route() said Record) and returns cudaSuccess; out of
// memory sets the error, invalidates the capture and returns the error.
cudaError_t record(cudaStream_t stream, Op op);
// Sets `err` as the last error and invalidates the capture on `stream`.
void invalidate(cudaStream_t stream, cudaError_t err);

template <typename... A>
struct BoundLaunch {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  std::tuple<A...> args;  // copied once, as CUDA copies a kernel's arguments at the launch

  template <typename F>
  void run(F kernel) {
    switch (route(stream)) {
      case Route::Refused: return;
      case Route::Run: execute(kernel); return;
      case Route::Record: break;
    }
    // A capture checks the configuration now (a bad one fails the launch and the capture) and
    // keeps copies of the kernel and its arguments; alignment faults when the graph runs.
    const cudaError_t bad = check_configuration(grid, block, shared_bytes);
    if (bad != cudaSuccess) return invalidate(stream, bad);
    Op op;
    try {
      op = [kernel, copy = *this]() { return copy.execute(kernel); };
    } catch (...) {
      return invalidate(stream, cudaErrorMemoryAllocation);
    }
    record(stream, std::move(op));
  }

  // The launch itself, now or at a graph's replay. Every replay of a recorded launch goes through
  // the same instantiation as a direct launch, so a kernel found synchronising (launch.cpp) is
  // known as such under both.
  template <typename F>
  cudaError_t execute(F kernel) const {
    // A typed pointer off its type's alignment faults on a GPU (cudaErrorMisalignedAddress) at
    // its first access; here at the launch, for every pointer argument.
    if (!std::apply([](const auto&... a) { return (aligned(a) && ...); }, args))
      return misaligned_launch();
    struct State {
      F kernel;
      const std::tuple<A...>* args;
    } state{kernel, &args};
    // Each thread calls the kernel with its own copies of the arguments (they are by-value
    // parameters, which a kernel may change).
    return launch(grid, block, shared_bytes, stream,
                  Body{[](void* p) {
                         auto* s = static_cast<State*>(p);
                         std::apply(s->kernel, *s->args);
                       },
                       &state});
  }
};

struct Launch {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  Launch(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t st = nullptr)
      : grid(g), block(b), shared_bytes(s), stream(st) {}
  template <typename... A>
  BoundLaunch<std::decay_t<A>...> args(A&&... a) const {
    return {grid, block, shared_bytes, stream, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)};
  }
};

}  // namespace fc_emu
