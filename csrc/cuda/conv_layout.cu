// conv2d's memory-bound passes (conv_layout.h). What made them slow on the H200 (im2col at 8.5%
// of the copy bandwidth, col2im at 15%) was index math, not memory: several 64-bit divisions per
// element, each a software routine on a GPU. Here every division is by a divisor fixed at launch,
// through a Div policy (fastdiv.h): FastDivU32 (multiply-high, add, shift) wherever the sizes fit
// in 31 bits, PlainDiv otherwise. im2col and col2im also take their per-row quantities (channel,
// tap, image) once per block row instead of once per element: blockIdx.y walks the rows (of col,
// or the planes of dx) and blockIdx.x the contiguous positions within one, so consecutive threads
// write consecutive addresses and, at stride 1, read consecutive addresses too.
#include "cuda/conv_layout.h"

#include "cuda/context.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// Grid for a (rows x length) 2-D kernel: x covers one row's length, y the rows (both loop).
dim3 row_grid(index_t rows, index_t length) {
  constexpr index_t kMaxGridY = 65535;
  const index_t y = rows < 1 ? 1 : (rows < kMaxGridY ? rows : kMaxGridY);
  const index_t want_x = (length + kBlock - 1) / kBlock;
  // Enough blocks in all for the whole device, without more per row than the row needs.
  const index_t x = want_x < 1 ? 1 : (want_x < kMaxBlocks ? want_x : kMaxBlocks);
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

#define FC_ROW_LOOP_Y(r, rows) \
  for (::fastconv::index_t r = blockIdx.y; r < (rows); r += ::fastconv::index_t(gridDim.y))

// Row r of col is (channel c, tap ki, kj): r = (c*kh + ki)*kw + kj. Column q is (sample j,
// output oh, ow): q = j*plane + oh*ow + ow.
template <class Div>
__global__ void im2col_kernel(float* col, const float* x, Conv2dShape s, index_t nb, Div by_kw,
                              Div by_kh, Div by_plane, Div by_ow) {
  const index_t ld = nb * s.out_plane(), in_plane = s.h * s.w, in_sample = s.c * in_plane;
  FC_ROW_LOOP_Y(r, s.col_rows()) {
    index_t ck, kj, c, ki;
    by_kw.divmod(r, &ck, &kj);
    by_kh.divmod(ck, &c, &ki);
    const float* xc = x + c * in_plane;
    float* out = col + r * ld;
    FC_GRID_LOOP(q, ld) {
      index_t j, p, oh, ow;
      by_plane.divmod(q, &j, &p);
      by_ow.divmod(p, &oh, &ow);
      const index_t ih = conv_in_coord(oh, ki, s.sh, s.ph, s.dh);
      const index_t iw = conv_in_coord(ow, kj, s.sw, s.pw, s.dw);
      const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
      out[q] = inside ? xc[j * in_sample + ih * s.w + iw] : 0.0f;
    }
  }
}

// Plane jc = j*c + c of dx; position e = ih*w + iw within it.
template <class Div>
__global__ void col2im_kernel(float* dx, const float* col, Conv2dShape s, index_t nb, Div by_c,
                              Div by_w, Div by_sh, Div by_sw) {
  const index_t plane = s.out_plane(), ld = nb * plane, in_plane = s.h * s.w;
  const index_t taps = s.kh * s.kw;
  FC_ROW_LOOP_Y(jc, nb * s.c) {
    index_t j, c;
    by_c.divmod(jc, &j, &c);
    const float* src = col + c * taps * ld + j * plane;
    float* dst = dx + jc * in_plane;
    FC_GRID_LOOP(e, in_plane) {
      index_t ih, iw;
      by_w.divmod(e, &ih, &iw);
      float acc = 0.0f;
      for (index_t ki = 0; ki < s.kh; ++ki) {
        const index_t oh = conv_out_coord_by(ih, ki, by_sh, s.ph, s.dh, s.oh);
        if (oh < 0) continue;
        for (index_t kj = 0; kj < s.kw; ++kj) {
          const index_t ow = conv_out_coord_by(iw, kj, by_sw, s.pw, s.dw, s.ow);
          if (ow < 0) continue;
          acc = __fadd_rn(acc, src[(ki * s.kw + kj) * ld + oh * s.ow + ow]);
        }
      }
      dst[e] = acc;
    }
  }
}

template <class Div>
__global__ void fill_bias_kernel(float* m, const float* bias, index_t count, Div by_cols) {
  FC_GRID_LOOP(e, count) m[e] = bias[by_cols.div(e)];
}

// e runs over y in NCHW order: e = (j*k + kk)*plane + p.
template <class Div>
__global__ void gemm_to_nchw_kernel(float* y, const float* m, index_t nb, index_t count,
                                    bool relu, Div by_plane, Div by_k) {
  const index_t plane = by_plane.d;
  FC_GRID_LOOP(e, count) {
    index_t row, p, j, kk;
    by_plane.divmod(e, &row, &p);
    by_k.divmod(row, &j, &kk);
    const float v = m[(kk * nb + j) * plane + p];
    y[e] = relu && v < 0.0f ? 0.0f : v;
  }
}

// e runs over m in GEMM order: e = (kk*nb + j)*plane + p.
template <class Div>
__global__ void nchw_to_gemm_kernel(float* m, const float* dy, const float* relu_y, index_t k,
                                    index_t count, Div by_plane, Div by_nb) {
  const index_t plane = by_plane.d;
  FC_GRID_LOOP(e, count) {
    index_t row, p, kk, j;
    by_plane.divmod(e, &row, &p);
    by_nb.divmod(row, &kk, &j);
    const index_t src = (j * k + kk) * plane + p;
    const float v = dy[src];
    m[e] = relu_y ? (relu_y[src] > 0.0f ? v : 0.0f) : v;
  }
}

#undef FC_ROW_LOOP_Y

template <class Div>
void launch_im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  im2col_kernel<<<row_grid(s.col_rows(), nb * s.out_plane()), kBlock, 0, stream()>>>(
      col, x, s, nb, Div(s.kw), Div(s.kh), Div(s.out_plane()), Div(s.ow));
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb) {
  col2im_kernel<<<row_grid(nb * s.c, s.h * s.w), kBlock, 0, stream()>>>(
      dx, col, s, nb, Div(s.c), Div(s.w), Div(s.sh), Div(s.sw));
  FC_LAUNCH_CHECK();
}

}  // namespace

void im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  const index_t ld = nb * s.out_plane();
  if (s.col_rows() == 0 || ld == 0) return;
  if (fast_div_fits({s.col_rows(), ld}))
    launch_im2col<FastDivU32>(col, x, s, nb);
  else
    launch_im2col<PlainDiv>(col, x, s, nb);
}

void col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb) {
  if (nb * s.c == 0 || s.h * s.w == 0) return;
  // Dividends: jc < nb*c, e < h*w, and conv_out_coord's i + p < h + ph (w + pw).
  if (fast_div_fits({nb * s.c, s.h * s.w, s.h + s.ph, s.w + s.pw, s.sh, s.sw}))
    launch_col2im<FastDivU32>(dx, col, s, nb);
  else
    launch_col2im<PlainDiv>(dx, col, s, nb);
}

void fill_bias(float* m, const float* bias, index_t k, index_t cols) {
  const index_t count = k * cols;
  if (count == 0) return;
  if (fast_div_fits({count}))
    fill_bias_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(m, bias, count, FastDivU32(cols));
  else
    fill_bias_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(m, bias, count, PlainDiv(cols));
  FC_LAUNCH_CHECK();
}

void gemm_to_nchw(float* y, const float* m, index_t nb, index_t k, index_t plane, bool relu) {
  const index_t count = nb * k * plane;
  if (count == 0) return;
  if (fast_div_fits({count}))
    gemm_to_nchw_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        y, m, nb, count, relu, FastDivU32(plane), FastDivU32(k));
  else
    gemm_to_nchw_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        y, m, nb, count, relu, PlainDiv(plane), PlainDiv(k));
  FC_LAUNCH_CHECK();
}

void nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                  index_t plane) {
  const index_t count = nb * k * plane;
  if (count == 0) return;
  if (fast_div_fits({count}))
    nchw_to_gemm_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        m, dy, relu_y, k, count, FastDivU32(plane), FastDivU32(nb));
  else
    nchw_to_gemm_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(
        m, dy, relu_y, k, count, PlainDiv(plane), PlainDiv(nb));
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
