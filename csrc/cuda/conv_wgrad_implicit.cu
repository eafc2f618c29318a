// The implicit-GEMM conv2d weight gradient (conv_implicit_backward.h). Not written yet: no shape
// is supported, so conv2d_backward always takes im2col + cuBLAS for dw and db.
#include <stdexcept>

#include "cuda/conv_implicit_backward.h"

namespace fastconv::cuda {

bool conv2d_wgrad_implicit_supported(const Conv2dShape&) { return false; }

void conv2d_wgrad_implicit(float*, float*, const float*, const float*, const float*,
                           const Conv2dShape&) {
  throw std::logic_error("conv2d_wgrad_implicit: no shape is supported yet");
}

}  // namespace fastconv::cuda
