// conv2d on the GPU, the twin of csrc/cpu/conv.cpp: the same group-of-samples structure, the
// same GEMMs (through cuda::gemm, the row-major door to cuBLAS) and the same index math
// (fastconv/geometry.h). Where the CPU runs groups in parallel on threads, the GPU runs them one
// after another on stream(), each kernel and GEMM using the whole device.
//
// Determinism: every kernel here writes each output element from exactly one thread, summing in
// a fixed order (col2im gathers its taps in ascending (ki, kj), as the CPU does); the bias
// gradient is channel_sum.h's two fixed-order stages; dW accumulates group after group in batch
// order through beta = 1. The grouping depends on the shape and the device's L2 size alone. So a
// rerun gives the same bits (cuBLAS itself being deterministic on one stream with a fixed handle
// and workspace), unless autotuning (conv_choice.h, off by default) chooses the kernels by time.
#include "cuda/conv.h"

#include <atomic>

#include "cuda/channel_sum.h"
#include "cuda/device_array.h"
#include "cuda/dense.h"
#include "cuda/context.h"
#include "cuda/conv_implicit.h"
#include "cuda/conv_choice.h"
#include "cuda/conv_implicit_backward.h"
#include "cuda/conv_layout.h"
#include "cuda/kernels_common.cuh"
#include "cuda/lt_gemm.h"

namespace fastconv::cuda {
namespace {

index_t per_sample_elems(const Conv2dShape& s) { return (s.col_rows() + s.k) * s.out_plane(); }

}  // namespace

// A group's columns and GEMM-layout output are kept within half of the L2 cache where one sample
// allows: the GEMM then reads the columns im2col has just written from L2, and the next group
// overwrites them there, so they need not go through device memory at all (a group of 60 samples
// of the tutorial's second conv, 70 MB, did). Between 8 and 64 MiB: wide enough GEMMs whatever
// the card, memory bounded whatever the batch. 64 MiB where the size cannot be read.
namespace {
std::atomic<index_t> g_budget_bytes{0};  // 0: the L2-sized budget
}  // namespace

void set_conv2d_column_budget(std::size_t bytes) { g_budget_bytes.store(index_t(bytes)); }

index_t conv2d_column_budget() {
  if (const index_t set = g_budget_bytes.load()) return max_i(1, set / index_t(sizeof(float)));
  static const index_t floats = [] {
    constexpr index_t kMiB = index_t(1) << 20;
    int device = 0, l2 = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device) != cudaSuccess || l2 <= 0) {
      cudaGetLastError();
      return 64 * kMiB / index_t(sizeof(float));
    }
    return max_i(8 * kMiB, min_i(64 * kMiB, index_t(l2) / 2)) / index_t(sizeof(float));
  }();
  return floats;
}

namespace {

// Groups as even as the budget allows (64 samples at most 27 a group: 22, 21, 21), so that no
// small last group makes a narrow, inefficient GEMM.
index_t conv2d_group(const Conv2dShape& s) {
  const index_t most = max_i(1, conv2d_column_budget() / per_sample_elems(s));
  if (s.n <= most) return s.n;
  const index_t groups = (s.n + most - 1) / most;
  return (s.n + groups - 1) / groups;
}

// y_j = W * col_g's columns of sample j, j < nb, each written as NCHW with the bias and ReLU
// applied: row-major layouts throughout, so that the bias is per row of D (a channel).
bool fused_gemm(float* y, const float* w, const float* col, const float* b,
                const Conv2dShape& s, index_t nb, bool relu) {
  const index_t plane = s.out_plane(), rows = s.col_rows();
  LtGemm g;
  g.a = w;
  g.a_layout = {s.k, rows, rows, true, 0};
  g.b = col;
  g.b_layout = {rows, plane, nb * plane, true, plane};
  g.d = y;
  g.d_layout = {s.k, plane, plane, true, s.k * plane};
  g.batch = nb;
  g.epilogue = b ? (relu ? LtEpilogue::relu_bias : LtEpilogue::bias)
                 : (relu ? LtEpilogue::relu : LtEpilogue::none);
  g.bias = const_cast<float*>(b);  // only read in these epilogues
  return lt_gemm(g);
}

std::atomic<ConvKernel> g_forward_kernel{ConvKernel::automatic};
std::atomic<ConvKernel> g_backward_kernel{ConvKernel::automatic};

// The candidates (conv_choice.h) a call may run, as a mask over their bits: im2col always, and
// the implicit kernels where they take the shape.
unsigned candidate_mask(bool implicit, bool implicit_dx) {
  unsigned mask = 1u << 0;
  if (implicit) mask |= 1u << kImplicit;
  if (implicit_dx) mask |= 1u << kImplicitDx;
  if (implicit && implicit_dx) mask |= 1u << (kImplicit | kImplicitDx);
  return mask;
}

// The candidate a forced kernel (ConvKernel::im2col or implicit) runs.
unsigned forced(ConvKernel kernel, bool implicit, bool implicit_dx) {
  if (kernel != ConvKernel::implicit) return 0;
  return (implicit ? kImplicit : 0u) | (implicit_dx ? kImplicitDx : 0u);
}

}  // namespace

void set_conv2d_forward_kernel(ConvKernel kernel) { g_forward_kernel.store(kernel); }
ConvKernel conv2d_forward_kernel() { return g_forward_kernel.load(); }
void set_conv2d_backward_kernel(ConvKernel kernel) { g_backward_kernel.store(kernel); }
ConvKernel conv2d_backward_kernel() { return g_backward_kernel.load(); }

std::size_t conv2d_scratch_bytes(const Conv2dShape& s) {
  return static_cast<std::size_t>(conv2d_group(s) * per_sample_elems(s)) * sizeof(float);
}

// Per group, first choice: one batched cuBLASLt GEMM, sample j's y_j (k x oh*ow, row-major: NCHW)
// = W * its columns of col_g, with the bias and the ReLU in the GEMM's epilogue (lt_gemm.h); no
// pass over y after it. Where cuBLASLt has no algorithm for that: y_g (k x nb*oh*ow) = W * col_g
// (beta = 0), then one pass that adds the bias, applies the ReLU and, for groups of several
// samples, reorders `mat` into NCHW. (The bias used to be a fill pass that the GEMM then read
// back through beta = 1: two passes over y more.) A one-sample group's GEMM layout already is
// NCHW: it is written in place, and the pass runs in place where there is a bias or a ReLU.
//
// Scratch comes from the caching allocator and goes back when this function returns, while the
// kernels that use it may still be queued: safe because the allocator hands memory out in stream
// order on the one stream every launch uses.
namespace {

void forward_im2col(float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, bool relu) {
  const index_t plane = s.out_plane(), rows = s.col_rows(), group = conv2d_group(s);
  const index_t in_sample = s.c * s.h * s.w, out_sample = s.k * plane;
  DeviceArray scratch({group * per_sample_elems(s)}, DType::f32);
  float* col = scratch.data<float>();
  float* mat = col + rows * group * plane;
  for (index_t n0 = 0; n0 < s.n; n0 += group) {
    const index_t nb = min_i(group, s.n - n0), cols = nb * plane;
    float* yg = y + n0 * out_sample;
    float* dst = nb == 1 ? yg : mat;
    im2col(col, x + n0 * in_sample, s, nb);
    if ((nb > 1 || relu || b) && fused_gemm(yg, w, col, b, s, nb, relu)) continue;
    gemm(false, false, s.k, cols, rows, 1.0f, w, rows, col, cols, 0.0f, dst, cols);
    if (nb > 1 || relu || b) gemm_to_nchw(yg, dst, b, nb, s.k, plane, relu);
  }
}

}  // namespace

// im2col + cuBLAS, or the implicit-GEMM kernel (conv_implicit.h) in one launch, as ConvKernel and
// autotuning (conv_choice.h) choose.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, bool relu) {
  const bool implicit = conv2d_implicit_supported(s);
  const auto run = [&](unsigned c) {
    if (c & kImplicit)
      conv2d_forward_implicit(y, x, w, b, s, relu);
    else
      forward_im2col(y, x, w, b, s, relu);
  };
  const ConvKernel kernel = g_forward_kernel.load();
  if (kernel == ConvKernel::automatic)
    conv2d_run_autotuned(ConvPass::forward, s, false, candidate_mask(implicit, false), run);
  else
    run(forced(kernel, implicit, false));
}

// db: the bias gradient's two stages (channel_sum.h), through the ReLU mask when relu_y is
// given. Where dy goes through the GEMM-layout pass anyway (groups of several samples, or a
// ReLU), that pass also sums it (nchw_to_gemm_sum: every group's chunks side by side in
// `partial`, then one channel_totals), which saves bias_grad's separate read of dy and relu_y;
// otherwise bias_grad reads dy itself. Either way the partition is fixed by the shape.
// dW (unless dw is null: the implicit wgrad has taken it, and db with it): dW = sum over groups
// of dy_g * col_g^T, the first group with beta = 0 and the rest with beta = 1, in batch order.
// dX: per group dcol_g = W^T * dy_g, written over col_g (its last use was the dW GEMM), then the
// gather col2im.
namespace {

void backward_im2col(float* dx, float* dw, float* db, const float* x, const float* w,
                     const float* dy, const float* relu_y, const Conv2dShape& s) {
  const index_t plane = s.out_plane(), rows = s.col_rows(), group = conv2d_group(s);
  const index_t in_sample = s.c * s.h * s.w, out_sample = s.k * plane;
  const bool fold_db = db && (group > 1 || relu_y);
  if (db && !fold_db) bias_grad(db, dy, relu_y, s.n, s.k, plane);
  index_t slots = 0;  // per channel: every group's chunks
  for (index_t n0 = 0; n0 < s.n; n0 += group) slots += sum_chunks(min_i(group, s.n - n0) * plane);
  DeviceArray partial({fold_db ? s.k * slots : 1}, DType::f64);
  DeviceArray scratch({group * per_sample_elems(s)}, DType::f32);
  float* col = scratch.data<float>();
  float* mat = col + rows * group * plane;
  index_t base = 0;
  for (index_t n0 = 0; n0 < s.n; n0 += group) {
    const index_t nb = min_i(group, s.n - n0), cols = nb * plane;
    const float* dyg = dy + n0 * out_sample;
    const float* mask = relu_y ? relu_y + n0 * out_sample : nullptr;
    if (fold_db) {
      nchw_to_gemm_sum(mat, partial.data<double>(), slots, base, dyg, mask, nb, s.k, plane);
      base += sum_chunks(cols);
      dyg = mat;
    } else if (nb > 1 || relu_y) {
      nchw_to_gemm(mat, dyg, mask, nb, s.k, plane);
      dyg = mat;
    }
    if (dw) {
      im2col(col, x + n0 * in_sample, s, nb);
      gemm(false, true, s.k, rows, cols, 1.0f, dyg, cols, col, cols, n0 == 0 ? 0.0f : 1.0f, dw,
           rows);
    }
    if (dx) {
      gemm(true, false, rows, cols, s.k, 1.0f, w, rows, dyg, cols, 0.0f, col, cols);
      col2im(dx + n0 * in_sample, col, s, nb);
    }
  }
  if (fold_db) channel_totals(db, partial.data<double>(), s.k, slots);
}

}  // namespace

// Each half (dx; dw with db) by its implicit kernel where chosen, the rest by backward_im2col.
void conv2d_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                     const float* dy, const float* relu_y, const Conv2dShape& s) {
  const bool wgrad = conv2d_wgrad_implicit_supported(s);
  const bool dgrad = dx && conv2d_dgrad_implicit_supported(s);
  const auto run = [&](unsigned c) {
    const bool own_w = c & kImplicit, own_x = c & kImplicitDx;
    if (own_w) conv2d_wgrad_implicit(dw, db, x, dy, relu_y, s);
    if (own_x) conv2d_dgrad_implicit(dx, dy, w, relu_y, s);
    if (!own_w || (dx && !own_x))
      backward_im2col(own_x ? nullptr : dx, own_w ? nullptr : dw, own_w ? nullptr : db, x, w,
                      dy, relu_y, s);
  };
  const ConvKernel kernel = g_backward_kernel.load();
  if (kernel == ConvKernel::automatic)
    conv2d_run_autotuned(ConvPass::backward, s, dx != nullptr, candidate_mask(wgrad, dgrad), run);
  else
    run(forced(kernel, wgrad, dgrad));
}

}  // namespace fastconv::cuda
