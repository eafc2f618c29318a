#include "cuda/graph.h"

#include <atomic>
#include <stdexcept>
#include <utility>

#include "cuda/allocator.h"
#include "cuda/context.h"
#include "cuda/deferred_checks.h"
#include "cuda/runtime.h"

namespace fastconv::cuda {
namespace {

std::atomic<bool> g_capturing{false};

}  // namespace

bool capturing() { return g_capturing.load(); }

void refuse_in_capture(const char* what) {
  if (!g_capturing.load()) return;
  throw std::runtime_error(
      std::string(what) +
      " cannot run while a step is captured as a CUDA graph: a captured step may not wait for "
      "the device nor copy host data to it (pass host data as an argument of the step, and "
      "read results after it returns)");
}

Graph::Graph(cudaGraphExec_t exec, int pool, std::unique_ptr<CapturedChecks> checks)
    : exec_(exec), pool_(pool), checks_(std::move(checks)) {}

// The replays already queued keep running: CUDA releases an executable graph's resources once its
// launches complete, and memory handed back to the shared lists serves only later work.
Graph::~Graph() {
  cudaGraphExecDestroy(exec_);
  drop_pool(pool_);
}

void Graph::launch() {
  refuse_in_capture("launching a captured graph");
  FC_CUDA_CHECK(cudaGraphLaunch(exec_, stream()));
  checks_->arm();
}

void begin_capture() {
  if (g_capturing.load()) throw std::runtime_error("a step is already being captured");
  // Made now, outside the capture: each needs calls a capture refuses.
  cudaStream_t s = stream();
  (void)cublas_handle();
  begin_deferred_capture();
  try {
    begin_capture_pool();
  } catch (...) {
    end_deferred_capture();
    throw;
  }
  const cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) {
    cudaGetLastError();
    drop_pool(end_capture_pool());
    end_deferred_capture();
    FC_CUDA_CHECK(err);
  }
  g_capturing.store(true);
}

std::unique_ptr<Graph> end_capture() {
  if (!g_capturing.load()) throw std::runtime_error("no step is being captured");
  g_capturing.store(false);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream(), &graph);
  const int pool = end_capture_pool();
  std::unique_ptr<CapturedChecks> checks = end_deferred_capture();
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = ended;
  if (err == cudaSuccess) {
    err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);  // the executable graph keeps what it needs
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    drop_pool(pool);
    FC_CUDA_CHECK(err);
  }
  try {
    return std::make_unique<Graph>(exec, pool, std::move(checks));
  } catch (...) {
    cudaGraphExecDestroy(exec);
    drop_pool(pool);
    throw;
  }
}

void abandon_capture() noexcept {
  if (!g_capturing.load()) return;
  g_capturing.store(false);
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream(), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  cudaGetLastError();  // an invalidated capture's error is the one the caller already raises
  drop_pool(end_capture_pool());
  end_deferred_capture();
}

}  // namespace fastconv::cuda
