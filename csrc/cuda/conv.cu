// conv2d on the GPU, the twin of csrc/cpu/conv.cpp: the same group-of-samples structure, the
// same GEMMs (through cuda::gemm, the row-major door to cuBLAS) and the same index math
// (fastconv/geometry.h). Where the CPU runs groups in parallel on threads, the GPU runs them one
// after another on stream(), each kernel and GEMM using the whole device.
//
// Determinism: every kernel here writes each output element from exactly one thread, summing in
// a fixed order (col2im gathers its taps in ascending (ki, kj), as the CPU does); the bias
// gradient is a fixed tree per channel; dW accumulates group after group in batch order through
// beta = 1. The grouping depends on the shape alone. So a rerun gives the same bits (cuBLAS itself
// being deterministic on one stream with a fixed handle and workspace).
#include "cuda/conv.h"

#include "cuda/device_array.h"
#include "cuda/dense.h"
#include "cuda/context.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// A group's columns and GEMM-layout output are kept within this many floats (64 MiB) where one
// sample allows: large enough that late layers (7x7 planes) still make wide GEMMs, small enough to
// bound memory whatever the batch.
constexpr index_t kColumnBudget = index_t(1) << 24;

index_t per_sample_elems(const Conv2dShape& s) { return (s.col_rows() + s.k) * s.out_plane(); }

index_t conv2d_group(const Conv2dShape& s) {
  return min_i(s.n, max_i(1, kColumnBudget / per_sample_elems(s)));
}

// col (c*kh*kw rows, nb*oh*ow columns; sample j's columns start at j*oh*ow) from the nb samples
// at x. One thread per column entry: consecutive threads write consecutive output positions.
__global__ void im2col_kernel(float* col, const float* x, Conv2dShape s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane;
  FC_GRID_LOOP(e, s.col_rows() * ld) {
    const index_t r = e / ld, q = e % ld;
    const index_t j = q / plane, p = q % plane;
    const index_t oh = p / s.ow, ow = p % s.ow;
    const index_t c = r / (s.kh * s.kw), ki = (r / s.kw) % s.kh, kj = r % s.kw;
    const index_t ih = conv_in_coord(oh, ki, s.sh, s.ph, s.dh);
    const index_t iw = conv_in_coord(ow, kj, s.sw, s.pw, s.dw);
    const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
    col[e] = inside ? x[((j * s.c + c) * s.h + ih) * s.w + iw] : 0.0f;
  }
}

// Gather-form col2im: one thread per input element of the nb samples at dx, summing the one
// column entry per tap that read it, taps in ascending (ki, kj) -- the CPU's order. One writer
// per element, no atomics.
__global__ void col2im_kernel(float* dx, const float* col, Conv2dShape s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane;
  FC_GRID_LOOP(e, nb * s.c * s.h * s.w) {
    const index_t iw = e % s.w;
    index_t t = e / s.w;
    const index_t ih = t % s.h;
    t /= s.h;
    const index_t c = t % s.c, j = t / s.c;
    float acc = 0.0f;
    for (index_t ki = 0; ki < s.kh; ++ki) {
      const index_t oh = conv_out_coord(ih, ki, s.sh, s.ph, s.dh, s.oh);
      if (oh < 0) continue;
      for (index_t kj = 0; kj < s.kw; ++kj) {
        const index_t ow = conv_out_coord(iw, kj, s.sw, s.pw, s.dw, s.ow);
        if (ow < 0) continue;
        const index_t r = (c * s.kh + ki) * s.kw + kj;
        acc = __fadd_rn(acc, col[r * ld + j * plane + oh * s.ow + ow]);
      }
    }
    dx[e] = acc;
  }
}

// Rows of a GEMM-layout matrix (k rows of `cols`) start as the bias.
__global__ void fill_bias_kernel(float* m, const float* bias, index_t k, index_t cols) {
  FC_GRID_LOOP(e, k * cols) m[e] = bias[e / cols];
}

// A group's GEMM layout m (k rows, nb*plane columns) -> NCHW y (nb, k, plane), clamped at 0 with
// `relu` (NaN passes, as relu_forward). With nb == 1 the two layouts coincide and m may be y:
// each thread reads and writes its own element.
__global__ void store_output_kernel(float* y, const float* m, index_t nb, index_t k,
                                    index_t plane, bool relu) {
  FC_GRID_LOOP(e, nb * k * plane) {
    const index_t j = e / (k * plane), kk = (e / plane) % k, p = e % plane;
    const float v = m[kk * nb * plane + j * plane + p];
    y[e] = relu && v < 0.0f ? 0.0f : v;
  }
}

// NCHW dy (nb, k, plane) -> GEMM layout m (k, nb*plane), through the fused ReLU's gradient mask
// (dy where relu_y > 0, else +0) when relu_y is given.
__global__ void dy_to_gemm_kernel(float* m, const float* dy, const float* relu_y, index_t nb,
                                  index_t k, index_t plane) {
  const index_t ld = nb * plane;
  FC_GRID_LOOP(e, k * ld) {
    const index_t kk = e / ld, q = e % ld;
    const index_t j = q / plane, p = q % plane;
    const index_t src = (j * k + kk) * plane + p;
    const float v = dy[src];
    m[e] = relu_y ? (relu_y[src] > 0.0f ? v : 0.0f) : v;
  }
}

void im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  im2col_kernel<<<blocks_for(s.col_rows() * nb * s.out_plane()), kBlock, 0, stream()>>>(col, x,
                                                                                      s, nb);
  FC_LAUNCH_CHECK();
}

void col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb) {
  col2im_kernel<<<blocks_for(nb * s.c * s.h * s.w), kBlock, 0, stream()>>>(dx, col, s, nb);
  FC_LAUNCH_CHECK();
}

}  // namespace

std::size_t conv2d_scratch_bytes(const Conv2dShape& s) {
  return static_cast<std::size_t>(conv2d_group(s) * per_sample_elems(s)) * sizeof(float);
}

// Per group y_g (k x nb*oh*ow) = W (k x c*kh*kw) * col_g, the bias folded in as the GEMM's
// initial value (beta = 1). A one-sample group's GEMM layout already is NCHW, so it is written in
// place; larger groups go through `mat` and one reordering pass that also applies the ReLU.
//
// Scratch comes from the caching allocator and goes back when this function returns, while the
// kernels that use it may still be queued: safe because the allocator hands memory out in stream
// order on the one stream every launch uses.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
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
    if (b) {
      fill_bias_kernel<<<blocks_for(s.k * cols), kBlock, 0, stream()>>>(dst, b, s.k, cols);
      FC_LAUNCH_CHECK();
    }
    gemm(false, false, s.k, cols, rows, 1.0f, w, rows, col, cols, b ? 1.0f : 0.0f, dst, cols);
    if (nb > 1 || relu) {
      store_output_kernel<<<blocks_for(s.k * cols), kBlock, 0, stream()>>>(yg, dst, nb, s.k,
                                                                          plane, relu);
      FC_LAUNCH_CHECK();
    }
  }
}

// db: one block per output channel (bias_grad's fixed-order reduction, in double, through the
// ReLU mask when relu_y is given). dW: dW = sum over groups of dy_g * col_g^T, the first group
// with beta = 0 and the rest with beta = 1, in batch order. dX: per group dcol_g = W^T * dy_g,
// written over col_g (its last use was the dW GEMM), then the gather col2im.
void conv2d_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                     const float* dy, const float* relu_y, const Conv2dShape& s) {
  const index_t plane = s.out_plane(), rows = s.col_rows(), group = conv2d_group(s);
  const index_t in_sample = s.c * s.h * s.w, out_sample = s.k * plane;
  if (db) bias_grad(db, dy, relu_y, s.n, s.k, plane);
  DeviceArray scratch({group * per_sample_elems(s)}, DType::f32);
  float* col = scratch.data<float>();
  float* mat = col + rows * group * plane;
  for (index_t n0 = 0; n0 < s.n; n0 += group) {
    const index_t nb = min_i(group, s.n - n0), cols = nb * plane;
    const float* dyg = dy + n0 * out_sample;
    if (nb > 1 || relu_y) {
      dy_to_gemm_kernel<<<blocks_for(s.k * cols), kBlock, 0, stream()>>>(
          mat, dyg, relu_y ? relu_y + n0 * out_sample : nullptr, nb, s.k, plane);
      FC_LAUNCH_CHECK();
      dyg = mat;
    }
    im2col(col, x + n0 * in_sample, s, nb);
    gemm(false, true, s.k, rows, cols, 1.0f, dyg, cols, col, cols, n0 == 0 ? 0.0f : 1.0f, dw,
         rows);
    if (dx) {
      gemm(true, false, rows, cols, s.k, 1.0f, w, rows, dyg, cols, 0.0f, col, cols);
      col2im(dx + n0 * in_sample, col, s, nb);
    }
  }
}

}  // namespace fastconv::cuda
