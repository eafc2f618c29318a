// The emulator's stream capture and graphs, checked on their own: built with g++ against the
// emulator's sources by tests/test_cuda_emulator_graphs.py (after build_support/emulate_cuda.py has
// rewritten the launches). Prints OK and exits 0, or names each failed check and exits 1.
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "cublas_v2.h"

extern "C" void fc_emu_counts(long long* launches, long long* waits);

namespace {

int g_failures = 0;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "graph_selftest.cu:%d: failed: %s\n", __LINE__, #cond);   \
      ++g_failures;                                                                  \
    }                                                                                \
  } while (0)

constexpr int kN = 100;  // two blocks of 64 threads
constexpr int kThreads = 64;

__global__ void scale_add(float* y, const float* x, float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

// Meets at __syncthreads: the emulator must run its blocks as fibers, replayed or not.
__global__ void block_sum(const float* x, float* out, int n) {
  __shared__ float part[kThreads];
  const int t = threadIdx.x;
  const int i = blockIdx.x * kThreads + t;
  part[t] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (t < w) part[t] += part[t + w];
    __syncthreads();
  }
  if (t == 0) atomicAdd(out, part[0]);
}

long long launches() {
  long long l = 0, w = 0;
  fc_emu_counts(&l, &w);
  return l;
}
long long waits() {
  long long l = 0, w = 0;
  fc_emu_counts(&l, &w);
  return w;
}

cudaStream_t new_stream() {
  cudaStream_t s = nullptr;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  return s;
}

cudaStreamCaptureStatus status_of(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  CHECK(cudaStreamIsCapturing(s, &st) == cudaSuccess);
  return st;
}

// Ends the capture on `s` and says whether it had been invalidated (and the graph withheld).
bool ended_invalidated(cudaStream_t s) {
  cudaGraph_t g = reinterpret_cast<cudaGraph_t>(0x10);
  const cudaError_t err = cudaStreamEndCapture(s, &g);
  cudaGetLastError();
  if (err == cudaSuccess) cudaGraphDestroy(g);
  return err == cudaErrorStreamCaptureInvalidated && g == nullptr &&
         status_of(s) == cudaStreamCaptureStatusNone;
}

// A kernel, copies, a memset and a GEMM captured once and replayed with new host inputs.
void captured_step() {
  cudaStream_t s = new_stream();
  cublasHandle_t h = nullptr;
  CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSetStream(h, s) == CUBLAS_STATUS_SUCCESS);
  float *x = nullptr, *y = nullptr, *sums = nullptr;
  CHECK(cudaMalloc(&x, kN * sizeof(float)) == cudaSuccess);
  CHECK(cudaMalloc(&y, kN * sizeof(float)) == cudaSuccess);
  CHECK(cudaMalloc(&sums, 2 * sizeof(float)) == cudaSuccess);
  std::vector<float> host_x(kN), host_out(2, -7.0f);
  const float one = 1.0f, zero = 0.0f;
  const long long before = launches();

  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(status_of(s) == cudaStreamCaptureStatusActive);
  CHECK(cudaMemcpyAsync(x, host_x.data(), kN * sizeof(float), cudaMemcpyHostToDevice, s) ==
        cudaSuccess);
  CHECK(cudaMemsetAsync(y, 0, kN * sizeof(float), s) == cudaSuccess);
  CHECK(cudaMemsetAsync(sums, 0, 2 * sizeof(float), s) == cudaSuccess);
  scale_add<<<(kN + kThreads - 1) / kThreads, kThreads, 0, s>>>(y, x, 2.0f, kN);
  block_sum<<<(kN + kThreads - 1) / kThreads, kThreads, 0, s>>>(y, sums, kN);
  // sums[1] = x . x as a 1 x 1 GEMM (A: 1 x kN, B: kN x 1).
  CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, kN, &one, x, CUDA_R_32F, 1, x, CUDA_R_32F,
                     kN, &zero, sums + 1, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  CHECK(cudaMemcpyAsync(host_out.data(), sums, 2 * sizeof(float), cudaMemcpyDeviceToHost, s) ==
        cudaSuccess);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(s, &graph) == cudaSuccess && graph != nullptr);
  CHECK(status_of(s) == cudaStreamCaptureStatusNone);
  // Nothing ran: the fresh memory still reads as NaN, the host result is untouched.
  float y0 = 0.0f;
  CHECK(cudaMemcpy(&y0, y, sizeof y0, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(y0 != y0);
  CHECK(host_out[0] == -7.0f && host_out[1] == -7.0f);
  CHECK(launches() == before);

  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess && exec != nullptr);
  CHECK(cudaGraphDestroy(graph) == cudaSuccess);  // the executable graph stays valid
  for (int round = 0; round < 2; ++round) {
    float want_sum = 0.0f, want_dot = 0.0f;
    for (int i = 0; i < kN; ++i) {
      host_x[i] = round == 0 ? float(i) : float(3 - i);  // the copy reads them at the replay
      want_sum += 2.0f * host_x[i];
      want_dot += host_x[i] * host_x[i];
    }
    const long long at = launches();
    CHECK(cudaGraphLaunch(exec, s) == cudaSuccess);
    CHECK(launches() == at + 1);  // one launch for the host, whatever the graph holds
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(host_out[0] == want_sum);  // integers: exact in either block order
    CHECK(host_out[1] == want_dot);
  }

  // A graph launched into a capture is one piece of the outer graph.
  cudaStream_t s2 = new_stream();
  CHECK(cudaStreamBeginCapture(s2, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaGraphLaunch(exec, s2) == cudaSuccess);
  cudaGraph_t outer = nullptr;
  CHECK(cudaStreamEndCapture(s2, &outer) == cudaSuccess);
  cudaGraphExec_t outer_exec = nullptr;
  CHECK(cudaGraphInstantiate(&outer_exec, outer) == cudaSuccess);
  host_x.assign(kN, 1.0f);
  host_out.assign(2, 0.0f);
  const long long at = launches();
  CHECK(cudaGraphLaunch(outer_exec, s) == cudaSuccess);
  CHECK(launches() == at + 1);
  CHECK(host_out[0] == 2.0f * kN && host_out[1] == float(kN));
  CHECK(cudaGraphExecDestroy(outer_exec) == cudaSuccess);
  CHECK(cudaGraphDestroy(outer) == cudaSuccess);
  CHECK(cudaGraphExecDestroy(exec) == cudaSuccess);
  CHECK(cudaStreamDestroy(s2) == cudaSuccess);
  cudaFree(x);
  cudaFree(y);
  cudaFree(sums);
  cublasDestroy(h);
  cudaStreamDestroy(s);
}

// Each call CUDA refuses during a capture fails, does nothing and invalidates the capture.
void refused_calls() {
  cudaStream_t s = new_stream();
  cudaEvent_t ev = nullptr;
  CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess);
  void* dev = nullptr;
  CHECK(cudaMalloc(&dev, 64) == cudaSuccess);
  void* pinned = nullptr;
  CHECK(cudaMallocHost(&pinned, 64) == cudaSuccess);
  std::memset(pinned, 1, 64);
  void* got = reinterpret_cast<void*>(0x20);
  const std::vector<std::pair<const char*, std::function<cudaError_t()>>> calls = {
      {"cudaMalloc", [&] { return cudaMalloc(&got, 64); }},
      {"cudaFree", [&] { return cudaFree(dev); }},
      {"cudaMallocHost", [&] { return cudaMallocHost(&got, 64); }},
      {"cudaFreeHost", [&] { return cudaFreeHost(pinned); }},
      {"cudaMemcpy", [&] { return cudaMemcpy(pinned, dev, 64, cudaMemcpyDeviceToHost); }},
      {"cudaStreamSynchronize", [&] { return cudaStreamSynchronize(s); }},
      {"cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); }},
      {"cudaEventSynchronize", [&] { return cudaEventSynchronize(ev); }},
      {"cudaEventQuery", [&] { return cudaEventQuery(ev); }},
  };
  for (const auto& [name, call] : calls) {
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    const long long w = waits();
    const cudaError_t err = call();
    if (err != cudaErrorStreamCaptureUnsupported) std::fprintf(stderr, "refused? %s\n", name);
    CHECK(err == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaPeekAtLastError() == cudaErrorStreamCaptureUnsupported);
    CHECK(status_of(s) == cudaStreamCaptureStatusInvalidated);
    CHECK(waits() == w);
    CHECK(ended_invalidated(s));
  }
  // None of them happened: nothing allocated, freed or copied.
  CHECK(got == reinterpret_cast<void*>(0x20));
  CHECK(static_cast<unsigned char*>(pinned)[0] == 1);
  CHECK(cudaFree(dev) == cudaSuccess);
  CHECK(cudaFreeHost(pinned) == cudaSuccess);

  // An event recorded in a capture marks work that never ran: it cannot be waited for.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaEventRecord(ev, s) == cudaSuccess);
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
  CHECK(cudaEventQuery(ev) == cudaErrorCapturedEvent);
  CHECK(cudaGetLastError() == cudaErrorCapturedEvent);
  CHECK(cudaEventRecord(ev, s) == cudaSuccess);
  CHECK(cudaEventQuery(ev) == cudaSuccess);
  cudaGraphDestroy(g);
  cudaEventDestroy(ev);
  cudaStreamDestroy(s);
}

// With the thread's mode exchanged to Relaxed, memory calls work (PyTorch's allocator does this);
// a wait on the capturing stream (or the whole device) is refused in every mode.
void relaxed_mode() {
  cudaStream_t s = new_stream();
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  CHECK(cudaThreadExchangeStreamCaptureMode(&mode) == cudaSuccess);
  CHECK(mode == cudaStreamCaptureModeGlobal);  // the thread's mode before
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 256) == cudaSuccess && p != nullptr);
  CHECK(cudaFree(p) == cudaSuccess);
  CHECK(cudaMallocHost(&p, 16) == cudaSuccess && cudaFreeHost(p) == cudaSuccess);
  CHECK(cudaThreadExchangeStreamCaptureMode(&mode) == cudaSuccess);
  CHECK(mode == cudaStreamCaptureModeRelaxed);
  CHECK(status_of(s) == cudaStreamCaptureStatusActive);
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && g != nullptr);  // an empty graph
  cudaGraphExec_t e = nullptr;
  CHECK(cudaGraphInstantiate(&e, g) == cudaSuccess && cudaGraphLaunch(e, s) == cudaSuccess);
  cudaGraphExecDestroy(e);
  cudaGraphDestroy(g);

  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  CHECK(cudaMalloc(&p, 16) == cudaSuccess && cudaFree(p) == cudaSuccess);  // a relaxed capture
  CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
  CHECK(ended_invalidated(s));
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  CHECK(cudaDeviceSynchronize() == cudaErrorStreamCaptureUnsupported);  // it waits for `s` too
  CHECK(ended_invalidated(s));
  mode = static_cast<cudaStreamCaptureMode>(7);
  CHECK(cudaThreadExchangeStreamCaptureMode(&mode) == cudaErrorInvalidValue);
  CHECK(cudaThreadExchangeStreamCaptureMode(nullptr) == cudaErrorInvalidValue);
  cudaGetLastError();

  // Another thread's capture: a ThreadLocal one leaves this thread free, a Global one does not,
  // and only the thread that began a non-relaxed capture may end it.
  for (const auto other_mode : {cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeGlobal}) {
    std::thread([&] { CHECK(cudaStreamBeginCapture(s, other_mode) == cudaSuccess); }).join();
    const cudaError_t err = cudaMalloc(&p, 16);
    cudaGetLastError();
    if (other_mode == cudaStreamCaptureModeThreadLocal) {
      CHECK(err == cudaSuccess && cudaFree(p) == cudaSuccess);
      CHECK(status_of(s) == cudaStreamCaptureStatusActive);
    } else {
      CHECK(err == cudaErrorStreamCaptureUnsupported);
      CHECK(status_of(s) == cudaStreamCaptureStatusInvalidated);
    }
    cudaGraph_t wrong = nullptr;
    CHECK(cudaStreamEndCapture(s, &wrong) == cudaErrorStreamCaptureWrongThread);
    CHECK(cudaGetLastError() == cudaErrorStreamCaptureWrongThread);
    std::thread([&] {
      cudaGraph_t own = nullptr;
      const cudaError_t end = cudaStreamEndCapture(s, &own);
      CHECK(end == (other_mode == cudaStreamCaptureModeGlobal ? cudaErrorStreamCaptureInvalidated
                                                              : cudaSuccess));
      if (own) cudaGraphDestroy(own);
    }).join();
  }
  cudaStreamDestroy(s);
}

// Beginning and ending a capture where CUDA refuses to, and work that fails a capture.
void capture_errors() {
  cudaStream_t s = new_stream();
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g) == cudaErrorIllegalState);  // not capturing
  CHECK(cudaGetLastError() == cudaErrorIllegalState);
  CHECK(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal) ==
        cudaErrorStreamCaptureUnsupported);
  CHECK(cudaStreamBeginCapture(cudaStreamLegacy, cudaStreamCaptureModeGlobal) ==
        cudaErrorStreamCaptureUnsupported);
  CHECK(cudaStreamBeginCapture(s, static_cast<cudaStreamCaptureMode>(3)) == cudaErrorInvalidValue);
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaErrorIllegalState);
  CHECK(cudaStreamEndCapture(s, nullptr) == cudaErrorInvalidValue);
  CHECK(status_of(s) == cudaStreamCaptureStatusActive);
  cudaGetLastError();

  float* x = nullptr;
  // (The capture above is still open: end it first, then allocate outside any capture.)
  CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
  cudaGraphDestroy(g);
  CHECK(cudaMalloc(&x, 8 * sizeof(float)) == cudaSuccess);

  // The legacy stream during a Global capture: an implicit dependency, refused.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const long long at = launches();
  scale_add<<<1, 8>>>(x, x, 1.0f, 8);
  CHECK(cudaGetLastError() == cudaErrorStreamCaptureImplicit);
  CHECK(launches() == at);
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
  CHECK(cudaStreamIsCapturing(cudaStreamLegacy, &st) == cudaErrorStreamCaptureImplicit);
  cudaGetLastError();
  CHECK(ended_invalidated(s));
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaMemsetAsync(x, 0, 4, nullptr) == cudaErrorStreamCaptureImplicit);
  CHECK(ended_invalidated(s));
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaMemsetAsync(x, 0, 4, s) == cudaSuccess);
  // A bad configuration fails at the capture, and so does everything after it.
  scale_add<<<1, 2048, 0, s>>>(x, x, 1.0f, 8);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(status_of(s) == cudaStreamCaptureStatusInvalidated);
  CHECK(cudaMemsetAsync(x, 0, 4, s) == cudaErrorStreamCaptureInvalidated);
  CHECK(ended_invalidated(s));

  // A misaligned argument faults when the graph runs, and the work after it does not run.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  float* off = reinterpret_cast<float*>(reinterpret_cast<char*>(x) + 2);
  scale_add<<<1, 4, 0, s>>>(off, x, 1.0f, 4);
  CHECK(cudaMemsetAsync(x, 0, 8 * sizeof(float), s) == cudaSuccess);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
  cudaGraphExec_t e = nullptr;
  CHECK(cudaGraphInstantiate(&e, g, 0) == cudaSuccess);
  CHECK(cudaGraphInstantiate(&e, g, 1ull << 40) == cudaErrorInvalidValue);
  cudaGetLastError();
  const float marker = 5.0f;
  CHECK(cudaMemcpy(x, &marker, sizeof marker, cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaGraphLaunch(e, s) == cudaSuccess);
  CHECK(cudaGetLastError() == cudaErrorMisalignedAddress);
  float back = 0.0f;
  CHECK(cudaMemcpy(&back, x, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(back == marker);  // the memset after the fault did not run
  CHECK(cudaGraphLaunch(nullptr, s) == cudaErrorInvalidValue);
  CHECK(cudaGraphExecDestroy(nullptr) == cudaErrorInvalidValue);
  CHECK(cudaGraphDestroy(nullptr) == cudaErrorInvalidValue);
  cudaGetLastError();
  cudaGraphExecDestroy(e);
  cudaGraphDestroy(g);
  cudaFree(x);
  // Destroying a capturing stream ends its capture.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 4) == cudaSuccess && cudaFree(p) == cudaSuccess);
}

void error_words() {
  const struct {
    cudaError_t err;
    const char* name;
  } codes[] = {{cudaErrorIllegalState, "cudaErrorIllegalState"},
               {cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched"},
               {cudaErrorStreamCaptureImplicit, "cudaErrorStreamCaptureImplicit"},
               {cudaErrorCapturedEvent, "cudaErrorCapturedEvent"},
               {cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread"}};
  for (const auto& c : codes) {
    CHECK(std::strcmp(cudaGetErrorName(c.err), c.name) == 0);
    CHECK(std::strcmp(cudaGetErrorString(c.err), "unknown error") != 0);
  }
  CHECK(std::strcmp(cudaGetErrorString(cudaErrorIllegalState),
                    "the operation cannot be performed in the present state") == 0);
}

}  // namespace

int main() {
  captured_step();
  refused_calls();
  relaxed_mode();
  capture_errors();
  error_words();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::puts("OK");
  return 0;
}
