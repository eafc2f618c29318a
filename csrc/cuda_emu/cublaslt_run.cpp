// The CPU work of one emulated cuBLASLt matmul (see lt_plan.h): op(A) and op(B) gathered into
// contiguous column-major copies (rounded to TF32 where asked), their product by OpenBLAS's sgemm,
// then beta C and the epilogue applied while the result is scattered into D's order and leading
// dimension. cuBLASLt's summation order is unspecified: tests compare within a tolerance.
#include <cblas.h>  // scipy-openblas32, as in cublas.cpp
#include <algorithm>
#include <cstddef>
#include <vector>

#include "lt_plan.h"
#include "tf32.h"

namespace fc_emu {
namespace {

// op(X) of batch `b`, rows x cols, into `out` column-major.
void gather(const LtMatrix& x, const float* data, std::int64_t b, bool trans, int rows, int cols,
            bool tf32, float* out) {
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) {
      const float v = data[trans ? x.at(b, j, i) : x.at(b, i, j)];
      out[std::size_t(j) * rows + i] = tf32 ? to_tf32(v) : v;
    }
}

// out[i] = sum over k of op(X)(i, k) for i < rows, op(X) being rows x k; the data as stored, not
// rounded to TF32 (the bias gradient is a sum, not a product on the tensor cores).
void row_sums(const LtMatrix& x, const float* data, std::int64_t b, bool trans, int rows, int k,
              float* out) {
  for (int i = 0; i < rows; ++i) {
    float sum = 0.0f;
    for (int kk = 0; kk < k; ++kk) sum += data[trans ? x.at(b, kk, i) : x.at(b, i, kk)];
    out[i] = sum;
  }
}

// out[j] = sum over k of op(X)(k, j) for j < cols, op(X) being k x cols.
void col_sums(const LtMatrix& x, const float* data, std::int64_t b, bool trans, int k, int cols,
              float* out) {
  for (int j = 0; j < cols; ++j) {
    float sum = 0.0f;
    for (int kk = 0; kk < k; ++kk) sum += data[trans ? x.at(b, j, kk) : x.at(b, kk, j)];
    out[j] = sum;
  }
}

}  // namespace

void run_lt_matmul(const LtPlan& p, float alpha, float beta, const float* a, const float* b,
                   const float* c, float* d) {
  const int m = p.m, n = p.n, k = p.k;
  const bool adds_bias = p.epilogue == LtEpilogue::Bias || p.epilogue == LtEpilogue::ReluBias;
  const bool relu = p.epilogue == LtEpilogue::Relu || p.epilogue == LtEpilogue::ReluBias;
  const bool product = m > 0 && n > 0;
  std::vector<float> op_a, op_b, prod;
  if (product) {
    op_a.resize(std::size_t(m) * k);
    op_b.resize(std::size_t(k) * n);
    prod.resize(std::size_t(m) * n);
  }
  float* const bias = static_cast<float*>(p.bias);
  for (int bt = 0; bt < p.batch; ++bt) {
    float* const bias_b = bias ? bias + bt * p.bias_stride : nullptr;
    if (product) {
      if (k > 0) {
        gather(p.a, a, bt, p.ta, m, k, p.tf32, op_a.data());
        gather(p.b, b, bt, p.tb, k, n, p.tf32, op_b.data());
        scipy_cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, op_a.data(),
                          m, op_b.data(), k, 0.0f, prod.data(), m);
      } else {
        std::fill(prod.begin(), prod.end(), 0.0f);  // an empty sum
      }
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
          float v = prod[std::size_t(j) * m + i];
          // Element by element, C read just before D is written: C may be D (same layout).
          if (beta != 0.0f) v += beta * c[p.c.at(bt, i, j)];
          if (adds_bias) v += bias_b[i];
          if (relu) v = v < 0.0f ? 0.0f : v;  // NaN stays NaN, so that it shows
          d[p.d.at(bt, i, j)] = v;
        }
    }
    if (p.epilogue == LtEpilogue::BgradA) row_sums(p.a, a, bt, p.ta, m, k, bias_b);
    if (p.epilogue == LtEpilogue::BgradB) col_sums(p.b, b, bt, p.tb, k, n, bias_b);
  }
}

}  // namespace fc_emu
