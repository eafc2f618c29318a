// conv2d's im2col and col2im (conv_layout.h; the GEMM-layout passes are in gemm_layout.cu).
// What made them slow on the H200 (im2col at 8.5% of the copy bandwidth, col2im at 15%) was index
// math, not memory: several 64-bit divisions per element, each a software routine on a GPU. Here
// every division is by a divisor fixed at launch, through a Div policy (fastdiv.h): FastDivU32
// (multiply-high, add, shift, int32 index math) wherever the sizes fit, PlainDiv otherwise. Both
// also take their per-row quantities (channel, tap, image) once per block row instead of once per
// element: blockIdx.y walks the rows (of col, or the planes of dx) and blockIdx.x the contiguous
// positions within one, so consecutive threads write consecutive addresses and, at stride 1, read
// consecutive addresses too. Each thread keeps several loads in flight where it can (im2col's 4
// columns, col2im's 3x3 taps).
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

// Rows of a 2-D grid, in the policy's index type I (as FC_GRID_LOOP_AS along x).
#define FC_LOOP_Y(I, r, rows) for (I r = I(blockIdx.y); r < (rows); r += I(gridDim.y))

// The shape's sizes in the kernel's index type.
template <class I>
struct ConvIdx {
  I c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  explicit ConvIdx(const Conv2dShape& s)
      : c(I(s.c)), h(I(s.h)), w(I(s.w)), kh(I(s.kh)), kw(I(s.kw)), sh(I(s.sh)), sw(I(s.sw)),
        ph(I(s.ph)), pw(I(s.pw)), dh(I(s.dh)), dw(I(s.dw)), oh(I(s.oh)), ow(I(s.ow)) {}
};

// Row r of col is (channel c, tap ki, kj): r = (c*kh + ki)*kw + kj. Column q is (sample j,
// output oh, ow): q = j*plane + oh*ow + ow.
template <class Div>
__global__ void im2col_kernel(float* col, const float* x, ConvIdx<typename Div::Int> s,
                              typename Div::Int rows, typename Div::Int ld, Div by_kw, Div by_kh,
                              Div by_plane, Div by_ow) {
  using I = typename Div::Int;
  const I in_plane = s.h * s.w, in_sample = s.c * in_plane;
  FC_LOOP_Y(I, r, rows) {
    I ck, kj, c, ki;
    by_kw.divmod(r, &ck, &kj);
    by_kh.divmod(ck, &c, &ki);
    const float* xc = x + c * in_plane;
    float* out = col + r * ld;
    FC_GRID_LOOP_AS(I, q, ld) {
      I j, p, oh, ow;
      by_plane.divmod(q, &j, &p);
      by_ow.divmod(p, &oh, &ow);
      const I ih = conv_in_coord(oh, ki, s.sh, s.ph, s.dh);
      const I iw = conv_in_coord(ow, kj, s.sw, s.pw, s.dw);
      const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
      out[q] = inside ? __ldg(xc + (j * in_sample + ih * s.w + iw)) : 0.0f;
    }
  }
}

// im2col 4 columns at a time (ld % 4 == 0 and col 16-byte aligned, which launch_im2col checks):
// each thread gathers q = 4t .. 4t+3 of a row (each decoded on its own: they may straddle output
// rows or samples), all four loads in flight at once, then one 16-byte store. The same values as
// im2col_kernel. q4 counts float4s of the row.
template <class Div>
__global__ void im2col4_kernel(float4* col, const float* x, ConvIdx<typename Div::Int> s,
                               typename Div::Int rows, typename Div::Int ld4, Div by_kw,
                               Div by_kh, Div by_plane, Div by_ow) {
  using I = typename Div::Int;
  const I in_plane = s.h * s.w, in_sample = s.c * in_plane;
  FC_LOOP_Y(I, r, rows) {
    I ck, kj, c, ki;
    by_kw.divmod(r, &ck, &kj);
    by_kh.divmod(ck, &c, &ki);
    const float* xc = x + c * in_plane;
    float4* out = col + r * ld4;
    FC_GRID_LOOP_AS(I, q4, ld4) {
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        I j, p, oh, ow;
        by_plane.divmod(q4 * 4 + u, &j, &p);
        by_ow.divmod(p, &oh, &ow);
        const I ih = conv_in_coord(oh, ki, s.sh, s.ph, s.dh);
        const I iw = conv_in_coord(ow, kj, s.sw, s.pw, s.dw);
        const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
        v[u] = inside ? __ldg(xc + (j * in_sample + ih * s.w + iw)) : 0.0f;
      }
      out[q4] = make_float4(v[0], v[1], v[2], v[3]);
    }
  }
}

// Plane jc = j*c + c of dx; position e = ih*w + iw within it.
template <class Div>
__global__ void col2im_kernel(float* dx, const float* col, ConvIdx<typename Div::Int> s,
                              typename Div::Int planes, typename Div::Int ld, Div by_c, Div by_w,
                              Div by_sh, Div by_sw) {
  using I = typename Div::Int;
  const I plane = s.oh * s.ow, in_plane = s.h * s.w, taps = s.kh * s.kw;
  FC_LOOP_Y(I, jc, planes) {
    I j, c;
    by_c.divmod(jc, &j, &c);
    const float* src = col + (c * taps * ld + j * plane);
    float* dst = dx + jc * in_plane;
    FC_GRID_LOOP_AS(I, e, in_plane) {
      I ih, iw;
      by_w.divmod(e, &ih, &iw);
      float acc = 0.0f;
      for (I ki = 0; ki < s.kh; ++ki) {
        const I oh = conv_out_coord_by(ih, ki, by_sh, s.ph, s.dh, s.oh);
        if (oh < 0) continue;
        for (I kj = 0; kj < s.kw; ++kj) {
          const I ow = conv_out_coord_by(iw, kj, by_sw, s.pw, s.dw, s.ow);
          if (ow < 0) continue;
          acc = __fadd_rn(acc, __ldg(src + ((ki * s.kw + kj) * ld + oh * s.ow + ow)));
        }
      }
      dst[e] = acc;
    }
  }
}

// col2im for a filter size fixed at compile time (3x3, the common case). The generic kernel's
// loop adds each tap as its load arrives, one memory latency after another; here all KH*KW loads
// are issued first. A tap that no output reads adds +0.0f, which leaves the sum's bits unchanged
// (the sum starts at +0 and round-to-nearest never makes it -0), so the result is bitwise the
// generic kernel's.
template <int KH, int KW, class Div>
__global__ void col2im_fixed_kernel(float* dx, const float* col, ConvIdx<typename Div::Int> s,
                                    typename Div::Int planes, typename Div::Int ld, Div by_c,
                                    Div by_w, Div by_sh, Div by_sw) {
  using I = typename Div::Int;
  const I plane = s.oh * s.ow, in_plane = s.h * s.w;
  FC_LOOP_Y(I, jc, planes) {
    I j, c;
    by_c.divmod(jc, &j, &c);
    const float* src = col + (c * I(KH * KW) * ld + j * plane);
    float* dst = dx + jc * in_plane;
    FC_GRID_LOOP_AS(I, e, in_plane) {
      I ih, iw;
      by_w.divmod(e, &ih, &iw);
      I oh[KH], ow[KW];
#pragma unroll
      for (int ki = 0; ki < KH; ++ki) oh[ki] = conv_out_coord_by(ih, I(ki), by_sh, s.ph, s.dh, s.oh);
#pragma unroll
      for (int kj = 0; kj < KW; ++kj) ow[kj] = conv_out_coord_by(iw, I(kj), by_sw, s.pw, s.dw, s.ow);
      float v[KH * KW];
#pragma unroll
      for (int ki = 0; ki < KH; ++ki)
#pragma unroll
        for (int kj = 0; kj < KW; ++kj)
          v[ki * KW + kj] = oh[ki] >= 0 && ow[kj] >= 0
                                ? __ldg(src + (I(ki * KW + kj) * ld + oh[ki] * s.ow + ow[kj]))
                                : 0.0f;
      float acc = 0.0f;
#pragma unroll
      for (int t = 0; t < KH * KW; ++t) acc = __fadd_rn(acc, v[t]);
      dst[e] = acc;
    }
  }
}

#undef FC_LOOP_Y

template <class Div>
void launch_im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  using I = typename Div::Int;
  const index_t ld = nb * s.out_plane();
  if (vec4_ok(ld, {col})) {
    im2col4_kernel<<<row_grid(s.col_rows(), ld / 4), kBlock, 0, stream()>>>(
        reinterpret_cast<float4*>(col), x, ConvIdx<I>(s), I(s.col_rows()), I(ld / 4), Div(s.kw),
        Div(s.kh), Div(s.out_plane()), Div(s.ow));
  } else {
    im2col_kernel<<<row_grid(s.col_rows(), ld), kBlock, 0, stream()>>>(
        col, x, ConvIdx<I>(s), I(s.col_rows()), I(ld), Div(s.kw), Div(s.kh), Div(s.out_plane()),
        Div(s.ow));
  }
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb) {
  using I = typename Div::Int;
  const dim3 grid = row_grid(nb * s.c, s.h * s.w);
  const ConvIdx<I> idx(s);
  const I planes = I(nb * s.c), ld = I(nb * s.out_plane());
  if (s.kh == 3 && s.kw == 3)
    col2im_fixed_kernel<3, 3><<<grid, kBlock, 0, stream()>>>(dx, col, idx, planes, ld, Div(s.c),
                                                             Div(s.w), Div(s.sh), Div(s.sw));
  else
    col2im_kernel<<<grid, kBlock, 0, stream()>>>(dx, col, idx, planes, ld, Div(s.c), Div(s.w),
                                                 Div(s.sh), Div(s.sw));
  FC_LAUNCH_CHECK();
}

}  // namespace

// Each takes the 32-bit path (FastDivU32, int32 index math) where every size it indexes fits.

void im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  const index_t ld = nb * s.out_plane();
  if (s.col_rows() == 0 || ld == 0) return;
  // conv_in_coord stays within (-(h + 2ph), h + 2ph): the taps' reach is inside the padded image.
  if (index32_fits({s.col_rows() * ld, nb * s.c * s.h * s.w, s.h + 2 * s.ph, s.w + 2 * s.pw}))
    launch_im2col<FastDivU32>(col, x, s, nb);
  else
    launch_im2col<PlainDiv>(col, x, s, nb);
}

void col2im(float* dx, const float* col, const Conv2dShape& s, index_t nb) {
  if (nb * s.c == 0 || s.h * s.w == 0) return;
  if (index32_fits({s.col_rows() * nb * s.out_plane(), nb * s.c * s.h * s.w, s.h + 2 * s.ph,
                    s.w + 2 * s.pw}))
    launch_col2im<FastDivU32>(dx, col, s, nb);
  else
    launch_col2im<PlainDiv>(dx, col, s, nb);
}

}  // namespace fastconv::cuda
