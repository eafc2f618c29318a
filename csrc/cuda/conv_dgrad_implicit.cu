// The implicit-GEMM conv2d data gradient (conv_implicit_backward.h). Not written yet: no shape is
// supported, so conv2d_backward always takes im2col + cuBLAS + col2im for dx.
#include <stdexcept>

#include "cuda/conv_implicit_backward.h"

namespace fastconv::cuda {

bool conv2d_dgrad_implicit_supported(const Conv2dShape&) { return false; }

void conv2d_dgrad_implicit(float*, const float*, const float*, const float*, const Conv2dShape&) {
  throw std::logic_error("conv2d_dgrad_implicit: no shape is supported yet");
}

}  // namespace fastconv::cuda
