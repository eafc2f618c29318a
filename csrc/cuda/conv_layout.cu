// conv2d's memory-bound passes (conv_layout.h). What made them slow on the H200 (im2col at 8.5%
// of the copy bandwidth, col2im at 15%) was index math, not memory: several 64-bit divisions per
// element, each a software routine on a GPU. Here every division is by a divisor fixed at launch,
// through a Div policy (fastdiv.h): FastDivU32 (multiply-high, add, shift) wherever the sizes fit
// in 31 bits, PlainDiv otherwise. im2col and col2im also take their per-row quantities (channel,
// tap, image) once per block row instead of once per element: blockIdx.y walks the rows (of col,
// or the planes of dx) and blockIdx.x the contiguous positions within one, so consecutive threads
// write consecutive addresses and, at stride 1, read consecutive addresses too.
#include "cuda/conv_layout.h"

#include <cstdint>
#include <initializer_list>

#include "cuda/channel_sum.h"
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

// e runs over y in NCHW order: e = (j*k + kk)*plane + p.
template <class Div>
__global__ void gemm_to_nchw_kernel(float* y, const float* m, const float* bias,
                                    typename Div::Int nb, typename Div::Int count, bool relu,
                                    Div by_plane, Div by_k) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, j, kk;
    by_plane.divmod(e, &row, &p);
    by_k.divmod(row, &j, &kk);
    float v = m[(kk * nb + j) * plane + p];
    if (bias) v = __fadd_rn(v, __ldg(bias + kk));
    y[e] = relu && v < 0.0f ? 0.0f : v;
  }
}

// e runs over m in GEMM order: e = (kk*nb + j)*plane + p.
template <class Div>
__global__ void nchw_to_gemm_kernel(float* m, const float* dy, const float* relu_y,
                                    typename Div::Int k, typename Div::Int count, Div by_plane,
                                    Div by_nb) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, kk, j;
    by_plane.divmod(e, &row, &p);
    by_nb.divmod(row, &kk, &j);
    const I src = (j * k + kk) * plane + p;
    const float v = dy[src];
    m[e] = relu_y ? (relu_y[src] > 0.0f ? v : 0.0f) : v;
  }
}

// The two layout passes 4 floats at a time (plane % 4 == 0 and 16-byte aligned arrays, which
// launch_* checks): one 16-byte load and store per thread instead of four 4-byte ones, so four
// times the bytes in flight per thread. Element for element the same operations, so the same
// bits as the scalar kernels. Indices count float4s; by_plane divides by plane / 4.
__device__ __forceinline__ float4 clamp4(float4 v) {
  v.x = v.x < 0.0f ? 0.0f : v.x;
  v.y = v.y < 0.0f ? 0.0f : v.y;
  v.z = v.z < 0.0f ? 0.0f : v.z;
  v.w = v.w < 0.0f ? 0.0f : v.w;
  return v;
}

template <class Div>
__global__ void gemm_to_nchw4_kernel(float4* y, const float4* m, const float* bias,
                                     typename Div::Int nb, typename Div::Int count, bool relu,
                                     Div by_plane, Div by_k) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, j, kk;
    by_plane.divmod(e, &row, &p);
    by_k.divmod(row, &j, &kk);
    float4 v = m[(kk * nb + j) * plane + p];
    if (bias) {
      const float b = __ldg(bias + kk);
      v.x = __fadd_rn(v.x, b);
      v.y = __fadd_rn(v.y, b);
      v.z = __fadd_rn(v.z, b);
      v.w = __fadd_rn(v.w, b);
    }
    y[e] = relu ? clamp4(v) : v;
  }
}

template <class Div>
__global__ void nchw_to_gemm4_kernel(float4* m, const float4* dy, const float4* relu_y,
                                     typename Div::Int k, typename Div::Int count, Div by_plane,
                                     Div by_nb) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, kk, j;
    by_plane.divmod(e, &row, &p);
    by_nb.divmod(row, &kk, &j);
    const I src = (j * k + kk) * plane + p;
    float4 v = __ldg(dy + src);
    if (relu_y) {
      const float4 r = __ldg(relu_y + src);
      v.x = r.x > 0.0f ? v.x : 0.0f;
      v.y = r.y > 0.0f ? v.y : 0.0f;
      v.z = r.z > 0.0f ? v.z : 0.0f;
      v.w = r.w > 0.0f ? v.w : 0.0f;
    }
    m[e] = v;
  }
}

// Block b = (channel kk, chunk part), b = kk * parts + part: the chunk's elements q of row kk of
// m (q = j*plane + p) are transformed as in nchw_to_gemm_kernel and summed as in
// channel_sum.cu's channel_partial_kernel (ascending q per thread, then the block's tree).
template <class Div>
__global__ void nchw_to_gemm_sum_kernel(float* m, double* partial, index_t stride, index_t base,
                                        const float* dy, const float* relu_y,
                                        typename Div::Int k, typename Div::Int ld, index_t parts,
                                        Div by_plane) {
  using I = typename Div::Int;
  __shared__ double buf[kReduceBlock];
  const I plane = I(by_plane.d);
  const I kk = I(blockIdx.x / parts), part = I(blockIdx.x % parts);  // once a block
  const I first = part * I(kSumChunk);
  const I end = ld - first < I(kSumChunk) ? ld : first + I(kSumChunk);
  float* row = m + kk * ld;
  double acc = 0.0;
#pragma unroll 4
  for (I q = first + I(threadIdx.x); q < end; q += I(kReduceBlock)) {
    I j, p;
    by_plane.divmod(q, &j, &p);
    const I src = (j * k + kk) * plane + p;
    float v = __ldg(dy + src);
    if (relu_y && !(__ldg(relu_y + src) > 0.0f)) v = 0.0f;
    row[q] = v;
    acc += static_cast<double>(v);
  }
  const double total = block_sum(acc, buf);
  if (threadIdx.x == 0) partial[index_t(kk) * stride + base + part] = total;
}

#undef FC_LOOP_Y

template <class Div>
void launch_im2col(float* col, const float* x, const Conv2dShape& s, index_t nb) {
  using I = typename Div::Int;
  const index_t ld = nb * s.out_plane();
  im2col_kernel<<<row_grid(s.col_rows(), ld), kBlock, 0, stream()>>>(
      col, x, ConvIdx<I>(s), I(s.col_rows()), I(ld), Div(s.kw), Div(s.kh), Div(s.out_plane()),
      Div(s.ow));
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

// Whether the 4-wide kernels apply: rows of whole float4s, every array 16-byte aligned (device
// arrays from elsewhere, e.g. DLPack views, need not be).
bool vec4_ok(index_t plane, std::initializer_list<const float*> arrays) {
  if (plane % 4 != 0) return false;
  for (const float* a : arrays)
    if (a && reinterpret_cast<std::uintptr_t>(a) % 16 != 0) return false;
  return true;
}

template <class Div>
void launch_gemm_to_nchw(float* y, const float* m, const float* bias, index_t nb, index_t k,
                         index_t plane, bool relu) {
  using I = typename Div::Int;
  const index_t count = nb * k * plane;
  if (vec4_ok(plane, {y, m})) {
    gemm_to_nchw4_kernel<<<blocks_for(count / 4), kBlock, 0, stream()>>>(
        reinterpret_cast<float4*>(y), reinterpret_cast<const float4*>(m), bias, I(nb),
        I(count / 4), relu, Div(plane / 4), Div(k));
  } else {
    gemm_to_nchw_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, m, bias, I(nb), I(count),
                                                                    relu, Div(plane), Div(k));
  }
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                         index_t plane) {
  using I = typename Div::Int;
  const index_t count = nb * k * plane;
  if (vec4_ok(plane, {m, dy, relu_y})) {
    nchw_to_gemm4_kernel<<<blocks_for(count / 4), kBlock, 0, stream()>>>(
        reinterpret_cast<float4*>(m), reinterpret_cast<const float4*>(dy),
        reinterpret_cast<const float4*>(relu_y), I(k), I(count / 4), Div(plane / 4), Div(nb));
  } else {
    nchw_to_gemm_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(m, dy, relu_y, I(k),
                                                                    I(count), Div(plane),
                                                                    Div(nb));
  }
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_nchw_to_gemm_sum(float* m, double* partial, index_t stride, index_t base,
                             const float* dy, const float* relu_y, index_t nb, index_t k,
                             index_t plane) {
  using I = typename Div::Int;
  const index_t ld = nb * plane, parts = sum_chunks(ld);
  nchw_to_gemm_sum_kernel<<<static_cast<unsigned>(k * parts), kReduceBlock, 0, stream()>>>(
      m, partial, stride, base, dy, relu_y, I(k), I(ld), parts, Div(plane));
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

void gemm_to_nchw(float* y, const float* m, const float* bias, index_t nb, index_t k,
                  index_t plane, bool relu) {
  if (nb * k * plane == 0) return;
  if (index32_fits({nb * k * plane}))
    launch_gemm_to_nchw<FastDivU32>(y, m, bias, nb, k, plane, relu);
  else
    launch_gemm_to_nchw<PlainDiv>(y, m, bias, nb, k, plane, relu);
}

void nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                  index_t plane) {
  if (nb * k * plane == 0) return;
  if (index32_fits({nb * k * plane}))
    launch_nchw_to_gemm<FastDivU32>(m, dy, relu_y, nb, k, plane);
  else
    launch_nchw_to_gemm<PlainDiv>(m, dy, relu_y, nb, k, plane);
}

void nchw_to_gemm_sum(float* m, double* partial, index_t stride, index_t base, const float* dy,
                      const float* relu_y, index_t nb, index_t k, index_t plane) {
  if (k == 0) return;
  if (index32_fits({nb * k * plane, nb * plane + kSumChunk}))
    launch_nchw_to_gemm_sum<FastDivU32>(m, partial, stride, base, dy, relu_y, nb, k, plane);
  else
    launch_nchw_to_gemm_sum<PlainDiv>(m, partial, stride, base, dy, relu_y, nb, k, plane);
}

}  // namespace fastconv::cuda
