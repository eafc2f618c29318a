// Placeholder so that the runtime branch links alone: the kernels branch replaces this file with
// the real bind_cuda_kernels.
#include "python/cuda_bindings.h"

namespace fastconv::bind {
void bind_cuda_kernels(pybind11::module_&) {}
}  // namespace fastconv::bind
