// Fused softmax cross-entropy over logits z (N, C), mean over the batch.
// Targets are either dense weights t (N, C) (one-hot or any non-negative weights) or integer
// labels (N,). Every row is done in logsumexp form, m = max z, s = sum exp(z - m):
//   row loss = sum_c t_c * ((m - z_c) + log s)      (labels: (m - z_t) + log s)
// so nothing overflows or underflows for logits of any magnitude.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cpu {

// loss (a scalar) = mean over rows. Labels must lie in [0, C) (the binding checks).
template <typename T>
void softmax_ce_forward(T* loss, const T* z, const T* t, index_t n, index_t c);
template <typename T>
void softmax_ce_forward(T* loss, const T* z, const std::int64_t* labels, index_t n, index_t c);

// dz (N, C) = (sum_c t_c * softmax(z) - t) * dloss / N; for labels, (softmax - onehot) * dloss / N.
template <typename T>
void softmax_ce_backward(T* dz, const T* z, const T* t, T dloss, index_t n, index_t c);
template <typename T>
void softmax_ce_backward(T* dz, const T* z, const std::int64_t* labels, T dloss, index_t n,
                         index_t c);

}  // namespace fastconv::cpu
