// Fused softmax cross-entropy over logits z (N, C) on the GPU, float32: the twin of
// csrc/cpu/loss.h (same logsumexp form, same target forms), one warp per row.
//   row loss = sum_c t_c * ((m - z_c) + log s)     (labels: (m - z_t) + log s)
// with m = max z and s = sum exp(z - m), found in one online pass.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// loss (one float, on the device) = mean over rows, reduced in a fixed order. Dense targets t
// (N, C): a weight that is negative or not finite lowers *first_bad (atomicMin) to the flat index
// i * C + j of the first one; labels (N,): a label outside [0, C) lowers it to the first row
// holding one (those rows' losses are NaN). Nothing waits: first_bad is a slot of
// deferred_checks.h's ledger.
void softmax_ce_forward(float* loss, const float* z, const float* t, index_t n, index_t c,
                        unsigned long long* first_bad);
void softmax_ce_forward(float* loss, const float* z, const std::int64_t* labels, index_t n,
                        index_t c, unsigned long long* first_bad);

// dz (N, C) = (sum_c t_c * softmax(z) - t) * dloss / N; labels: (softmax - onehot) * dloss / N,
// with the same bad-target reports as the forward.
void softmax_ce_backward(float* dz, const float* z, const float* t, float dloss, index_t n,
                         index_t c, unsigned long long* first_bad);
void softmax_ce_backward(float* dz, const float* z, const std::int64_t* labels, float dloss,
                         index_t n, index_t c, unsigned long long* first_bad);

// Both at once, from one read of z: bitwise what the two calls above give.
void softmax_ce_forward_backward(float* loss, float* dz, const float* z, const float* t,
                                 float dloss, index_t n, index_t c,
                                 unsigned long long* first_bad);
void softmax_ce_forward_backward(float* loss, float* dz, const float* z,
                                 const std::int64_t* labels, float dloss, index_t n, index_t c,
                                 unsigned long long* first_bad);

}  // namespace fastconv::cuda
