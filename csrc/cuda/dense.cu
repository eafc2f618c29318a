// The dense layer and the bias on the GPU, the twin of csrc/cpu/dense.cpp: the same three GEMMs.
// Where cuBLASLt offers it (lt_gemm.h), the forward's bias and ReLU are its GEMM's epilogue and
// the bias gradient is summed by the dW GEMM as it reads g. Otherwise: the bias filled into y
// before the forward GEMM (beta = 1), the ReLU in place after it, and the bias gradient by
// bias_grad (channel_sum.cu: a two-stage fixed-order reduction). Deterministic either way. A
// fused ReLU's gradient mask is applied once, before the backward's GEMMs.
#include "cuda/dense.h"

#include <optional>
#include <vector>

#include "cuda/activation.h"
#include "cuda/device_array.h"
#include "cuda/context.h"
#include "cuda/kernels_common.cuh"
#include "cuda/lt_gemm.h"
#include "fastconv/fastdiv.h"

namespace fastconv::cuda {
namespace {

// Every row of y (n, out) starts as b. Divisions through a Div policy (fastdiv.h).
template <class Div>
__global__ void fill_rows_kernel(float* y, const float* b, typename Div::Int count, Div by_out) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, count) {
    I row, col;
    by_out.divmod(e, &row, &col);
    y[e] = __ldg(b + col);
  }
}

// Element i = (j*c + ch)*inner + p gets b[ch].
template <class Div>
__global__ void bias_add_kernel(float* y, const float* x, const float* b,
                                typename Div::Int count, Div by_inner, Div by_c) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, i, count) {
    I row, p, j, ch;
    by_inner.divmod(i, &row, &p);
    by_c.divmod(row, &j, &ch);
    y[i] = __fadd_rn(x[i], __ldg(b + ch));
  }
}

// The forward's plain path: the bias fill, the GEMM adding onto it (beta = 1), then with `relu`
// the ReLU in place (relu_forward: NaN passes, as on the CPU). The seam for a single cuBLASLt
// matmul with the RELU_BIAS (or BIAS) epilogue, which would do all three in one launch.
void forward_plain(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out, bool relu) {
  if (b && n * out > 0) {
    if (index32_fits({n * out}))
      fill_rows_kernel<<<blocks_for(n * out), kBlock, 0, stream()>>>(
          y, b, FastDivU32::Int(n * out), FastDivU32(out));
    else
      fill_rows_kernel<<<blocks_for(n * out), kBlock, 0, stream()>>>(y, b, n * out,
                                                                     PlainDiv(out));
    FC_LAUNCH_CHECK();
  }
  gemm(false, false, n, out, in, 1.0f, x, in, w, out, b ? 1.0f : 0.0f, y, out);
  if (relu) relu_forward(y, y, n * out);
}

// dw (In, Out) = x^T @ g and db (Out) = the column sums of g (db may be null).
void weight_bias_grads_plain(float* dw, float* db, const float* x, const float* g, index_t n,
                             index_t in, index_t out) {
  gemm(true, false, in, out, n, 1.0f, x, in, g, out, 0.0f, dw, out);
  // (N, Out) is (N, C, inner = 1).
  if (db) bias_grad(db, g, nullptr, n, out, 1);
}

// Row-major y (n, out) read column-major is y^T (out x n), whose rows are the features: so
// y^T = w^T x^T, with w (In, Out) read column-major as w^T (out x in) and x as x^T (in x n), puts
// the bias on D's rows, where cuBLASLt's epilogue adds it.
bool forward_fused(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out, bool relu) {
  LtGemm g;
  g.a = w;
  g.a_layout = {out, in, out};
  g.b = x;
  g.b_layout = {in, n, in};
  g.d = y;
  g.d_layout = {out, n, out};
  g.epilogue = b ? (relu ? LtEpilogue::relu_bias : LtEpilogue::bias) : LtEpilogue::relu;
  g.bias = const_cast<float*>(b);  // only read in these epilogues
  return lt_gemm(g);
}

// dw^T (out x in) = g^T x, read column-major as above: A = g (out x n), B = x^T transposed; the
// bias gradient (one per row of D, a feature) sums A over k = n: BGRADA.
bool weight_bias_grads_fused(float* dw, float* db, const float* x, const float* g, index_t n,
                             index_t in, index_t out) {
  LtGemm l;
  l.a = g;
  l.a_layout = {out, n, out};
  l.trans_b = true;
  l.b = x;
  l.b_layout = {in, n, in};
  l.d = dw;
  l.d_layout = {out, in, out};
  l.epilogue = LtEpilogue::bias_grad_a;
  l.bias = db;
  return lt_gemm(l);
}

}  // namespace

// First choice: one cuBLASLt GEMM with the bias (and ReLU) in its epilogue; where cuBLASLt has
// no algorithm for it, the plain path.
void dense_forward(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out, bool relu) {
  if ((b || relu) && forward_fused(y, x, w, b, n, in, out, relu)) return;
  forward_plain(y, x, w, b, n, in, out, relu);
}

void dense_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                    const float* dy, const float* relu_y, index_t n, index_t in, index_t out) {
  const float* g = dy;
  std::optional<DeviceArray> masked;
  if (relu_y) {
    // The ReLU's gradient once (relu_backward's values, as the unfused chain computes them),
    // into scratch from the caching allocator that the GEMMs and the bias gradient then read.
    masked.emplace(std::vector<index_t>{n * out}, DType::f32);
    relu_backward(masked->data<float>(), dy, relu_y, n * out);
    g = masked->data<float>();
  }
  if (dx) gemm(false, true, n, in, out, 1.0f, g, out, w, out, 0.0f, dx, in);
  if (db && weight_bias_grads_fused(dw, db, x, g, n, in, out)) return;
  weight_bias_grads_plain(dw, db, x, g, n, in, out);
}

void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner) {
  const index_t count = n * c * inner;
  if (count == 0) return;
  if (index32_fits({count}))
    bias_add_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        y, x, b, FastDivU32::Int(count), FastDivU32(inner), FastDivU32(c));
  else
    bias_add_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, x, b, count, PlainDiv(inner),
                                                                PlainDiv(c));
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
