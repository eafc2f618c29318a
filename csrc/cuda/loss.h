// Fused softmax cross-entropy over logits z (N, C) on the GPU, float32: the twin of
// csrc/cpu/loss.h (same logsumexp form, same target forms), one warp per row.
//   row loss = sum_c t_c * ((m - z_c) + log s)     (labels: (m - z_t) + log s)
// with m = max z and s = sum exp(z - m), found in one online pass.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// loss (one float, on the device) = mean over rows, reduced in a fixed order. Dense targets t
// (N, C): a weight that is negative or not finite makes the call return the flat index i * C + j
// of the first one (reading a flag back); labels (N,): a label outside [0, C) makes it return
// the first row holding one (those rows' losses are NaN). -1 when all are valid.
index_t softmax_ce_forward(float* loss, const float* z, const float* t, index_t n, index_t c);
index_t softmax_ce_forward(float* loss, const float* z, const std::int64_t* labels, index_t n,
                           index_t c);

// dz (N, C) = (sum_c t_c * softmax(z) - t) * dloss / N; labels: (softmax - onehot) * dloss / N,
// with the same bad-target reports as the forward.
index_t softmax_ce_backward(float* dz, const float* z, const float* t, float dloss, index_t n,
                         index_t c);
index_t softmax_ce_backward(float* dz, const float* z, const std::int64_t* labels, float dloss,
                            index_t n, index_t c);

}  // namespace fastconv::cuda
