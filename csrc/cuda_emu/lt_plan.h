// One cuBLASLt matmul, checked and copied out of its descriptors (cublaslt.cpp), and the CPU
// work that computes it (cublaslt_run.cpp). Emulator-internal.
#pragma once
#include <cstdint>

namespace fc_emu {

// A float matrix as a layout describes it: element (i, j) of batch b at
// b * stride + (row_major ? i * ld + j : j * ld + i).
struct LtMatrix {
  bool row_major;
  std::int64_t rows, cols, ld, stride;

  std::int64_t at(std::int64_t b, std::int64_t i, std::int64_t j) const {
    return b * stride + (row_major ? i * ld + j : j * ld + i);
  }
};

enum class LtEpilogue { None, Relu, Bias, ReluBias, BgradA, BgradB };

// Everything the work reads, by value: the descriptors may be gone when it runs.
struct LtPlan {
  bool ta, tb, tf32;
  LtEpilogue epilogue;
  int m, n, k, batch;
  LtMatrix a, b, c, d;
  void* bias;  // read (Bias, ReluBias) or written (BgradA, BgradB); null otherwise
  std::int64_t bias_stride;
};

// D = epilogue(alpha op(A) op(B) + beta C) for every batch, C not read where beta == 0. Throws
// std::bad_alloc when its scratch cannot be had.
void run_lt_matmul(const LtPlan& plan, float alpha, float beta, const float* a, const float* b,
                   const float* c, float* d);

}  // namespace fc_emu
