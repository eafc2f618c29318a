// One float32 GEMM through cuBLASLt with its epilogue fused in: the bias (and a ReLU) added as
// the product is stored, or the bias gradient summed from an operand as it is read. What it saves
// is a pass over the output (or over dy) that a separate kernel would make.
//
// cuBLASLt does not offer every combination of layouts, batches and epilogues on every card; what
// it refuses is known only by asking it. So lt_gemm() asks (once per problem shape, remembered)
// and returns false when there is no algorithm: every caller keeps its own kernels as the path
// that then runs, and which path ran is counted (lt_gemm_stats) for the benchmarks to report.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// How one operand is stored: rows x cols (before any transpose), row- or column-major with
// leading dimension ld, and, in a batched GEMM, batch_stride elements from one batch's matrix to
// the next (0: every batch uses the same matrix).
struct LtLayout {
  index_t rows = 0, cols = 0, ld = 0;
  bool row_major = false;
  index_t batch_stride = 0;
};

enum class LtEpilogue {
  none,
  relu,         // D = max(D, 0)
  bias,         // D += bias, one value per row of D
  relu_bias,    // D = max(D + bias, 0)
  bias_grad_a,  // bias[i] = sum over k of op(A)(i, k): one value per row of D
  bias_grad_b,  // bias[j] = sum over k of op(B)(k, j): one value per column of D
};

// D (batch x rows x cols) = alpha * op(A) op(B) + beta * D, then the epilogue; float32 on
// stream(), TF32 when tf32() is on. bias is read (bias, relu_bias) or written (bias_grad_*), the
// same vector for every batch.
struct LtGemm {
  bool trans_a = false, trans_b = false;
  const float* a = nullptr;
  LtLayout a_layout;
  const float* b = nullptr;
  LtLayout b_layout;
  float* d = nullptr;
  LtLayout d_layout;
  index_t batch = 1;
  float alpha = 1.0f, beta = 0.0f;
  LtEpilogue epilogue = LtEpilogue::none;
  float* bias = nullptr;
};

// Queues the GEMM and returns true; or returns false having queued nothing, where cuBLASLt has no
// algorithm for it (its heuristic answers none, NOT_SUPPORTED or INVALID_VALUE) or fused
// epilogues are switched off. Any other failure throws CudaError.
bool lt_gemm(const LtGemm& g);

// Fused epilogues on (the default) or off: off, every caller runs its own kernels, which is
// how the benchmarks measure what the fusion is worth.
void set_gemm_epilogues(bool on);
bool gemm_epilogues();

struct LtGemmStats {
  std::int64_t fused = 0;    // GEMMs that ran with their epilogue through cuBLASLt
  std::int64_t refused = 0;  // GEMMs cuBLASLt had no algorithm for (the caller's kernels ran)
};
LtGemmStats lt_gemm_stats();

}  // namespace fastconv::cuda
