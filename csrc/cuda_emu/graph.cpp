// The emulator's CUDA graphs: a graph is the list of work a capture recorded, and its executable
// form shares that list (so it stays valid after the graph is destroyed, as in CUDA). A launch
// replays the list in order on the calling thread, as one launch for the host.
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "cuda_runtime.h"
#include "emulator.h"

struct CUgraph_st {
  std::shared_ptr<const std::vector<fc_emu::Op>> ops;
};
struct CUgraphExec_st {
  std::shared_ptr<const std::vector<fc_emu::Op>> ops;
};

namespace fc_emu {
namespace {

cudaError_t fail(cudaError_t err) {
  set_last_error(err);
  return err;
}

// Runs the work in order and stops at the first failure, as a GPU stops at a fault; the failure
// is the last error, as a kernel launch's would be.
cudaError_t replay(const std::vector<Op>& ops) {
  const bool outer = set_replaying(true);
  cudaError_t err = cudaSuccess;
  for (const Op& op : ops) {
    err = op();
    if (err != cudaSuccess) {
      set_last_error(err);
      break;
    }
  }
  set_replaying(outer);
  return err;
}

}  // namespace

cudaGraph_t new_graph(std::shared_ptr<const std::vector<Op>> ops) {
  return new (std::nothrow) CUgraph_st{std::move(ops)};
}

}  // namespace fc_emu

using fc_emu::fail;

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags) {
  constexpr unsigned long long known =
      cudaGraphInstantiateFlagAutoFreeOnLaunch | cudaGraphInstantiateFlagUpload |
      cudaGraphInstantiateFlagDeviceLaunch | cudaGraphInstantiateFlagUseNodePriority;
  if (!exec || !graph || (flags & ~known) != 0) return fail(cudaErrorInvalidValue);
  *exec = new (std::nothrow) CUgraphExec_st{graph->ops};
  return *exec ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

// Returns cudaSuccess once the graph is launched; what fails inside it (a misaligned argument)
// is the last error afterwards, as a kernel's failure is.
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  using namespace fc_emu;
  if (!exec) return fail(cudaErrorInvalidValue);
  switch (route(stream)) {
    case Route::Refused: return cudaPeekAtLastError();
    case Route::Record: {
      // A graph launched into a capture becomes one piece of the outer graph.
      Op op;
      try {
        op = [ops = exec->ops]() { return replay(*ops); };
      } catch (const std::bad_alloc&) {
        invalidate(stream, cudaErrorMemoryAllocation);
        return cudaErrorMemoryAllocation;
      }
      return record(stream, std::move(op));
    }
    case Route::Run: break;
  }
  count_launch();
  replay(*exec->ops);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return fail(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}
