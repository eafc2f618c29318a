// Pooling on the GPU, the twin of csrc/cpu/pool.cpp. The CPU builds per-axis index tables once a
// call to save divisions; here each thread asks geometry.h directly (pool_window,
// pool_outputs_reading_by), which is the same arithmetic without the table. Every division is by
// a divisor fixed at launch, through a Div policy (fastdiv.h): FastDivU32 wherever the sizes fit
// in 31 bits (64-bit divisions per element had made the max pool backward compute-bound).
//
// Determinism: every output (forward) and every input element (backward) has exactly one writer
// thread, which sums its terms in the CPU's order: raster order of the window for max, row sums
// then rows for the average, output rows then columns for the gathers. So reruns are bitwise
// equal, and the average pooling's arithmetic is the CPU's operation for operation.
#include "cuda/pool.h"

#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// The CPU's rule: strictly greater replaces (first maximum wins ties); the first NaN wins and
// then nothing replaces it.
__device__ __forceinline__ bool better(float v, float best) { return !(v <= best) && best == best; }

// The divisor factor of output o along one axis.
__device__ __forceinline__ index_t divisor_extent(const Window& w, bool count_include_pad) {
  return count_include_pad ? w.padded_extent : w.end - w.begin;
}

// The shape's sizes in the kernel's index type I (int32 on the 32-bit path).
template <class I>
struct PoolIdx {
  I h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  I in_count, out_count;  // n*c*h*w and n*c*oh*ow
  PoolIdx(const Pool2dShape& s)  // implicit: the launch macros pass the shape
      : h(I(s.h)), w(I(s.w)), kh(I(s.kh)), kw(I(s.kw)), sh(I(s.sh)), sw(I(s.sw)), ph(I(s.ph)),
        pw(I(s.pw)), oh(I(s.oh)), ow(I(s.ow)), in_count(I(s.n * s.c * s.h * s.w)),
        out_count(I(s.n * s.c * s.oh * s.ow)) {}
};

// Flat e = (plane*rows + i)*cols + j -> (plane, i, j), by_cols and by_rows dividing.
template <class Div, class I = typename Div::Int>
FC_HD void split_position(I e, const Div& by_cols, const Div& by_rows, I* plane, I* i, I* j) {
  I row;
  by_cols.divmod(e, &row, j);
  by_rows.divmod(row, plane, i);
}

template <class Div>
__global__ void max_forward_kernel(float* y, index_t* argmax, const float* x,
                                   PoolIdx<typename Div::Int> s, Div by_ow, Div by_oh) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, s.out_count) {
    I plane, oi, oj;
    split_position(e, by_ow, by_oh, &plane, &oi, &oj);
    const float* xp = x + plane * s.h * s.w;
    const Window wh = pool_window(oi, s.kh, s.sh, s.ph, s.h);
    const Window ww = pool_window(oj, s.kw, s.sw, s.pw, s.w);
    const I r0 = I(wh.begin), r1 = I(wh.end), c0 = I(ww.begin), c1 = I(ww.end);
    // Only clipped (in-image) positions are scanned, so padding never wins.
    I bi = r0 * s.w + c0;
    float best = __ldg(xp + bi);
    for (I r = r0; r < r1; ++r) {
      for (I c = c0; c < c1; ++c) {
        const float v = __ldg(xp + (r * s.w + c));
        if (better(v, best)) {
          best = v;
          bi = r * s.w + c;
        }
      }
    }
    y[e] = best;
    argmax[e] = bi;
  }
}

// The max forward for a window size fixed at compile time (2x2, 3x3): the generic loop waits for
// each tap's load before comparing it and loading the next; here the window's loads are all
// issued first, then compared in the same raster order over the same clipped positions (the
// first one, always inside, starts the scan), so y and argmax are bitwise the generic kernel's.
template <int KH, int KW, class Div>
__global__ void max_forward_fixed_kernel(float* y, index_t* argmax, const float* x,
                                         PoolIdx<typename Div::Int> s, Div by_ow, Div by_oh) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, s.out_count) {
    I plane, oi, oj;
    split_position(e, by_ow, by_oh, &plane, &oi, &oj);
    const float* xp = x + plane * s.h * s.w;
    const Window wh = pool_window(oi, s.kh, s.sh, s.ph, s.h);
    const Window ww = pool_window(oj, s.kw, s.sw, s.pw, s.w);
    const I r0 = I(wh.begin), c0 = I(ww.begin);
    const I rn = I(wh.end - wh.begin), cn = I(ww.end - ww.begin);  // 1..KH, 1..KW
    float v[KH * KW];
#pragma unroll
    for (int a = 0; a < KH; ++a)
#pragma unroll
      for (int b = 0; b < KW; ++b)
        v[a * KW + b] = a < rn && b < cn ? __ldg(xp + ((r0 + a) * s.w + c0 + b)) : 0.0f;
    I bi = r0 * s.w + c0;
    float best = v[0];
#pragma unroll
    for (int a = 0; a < KH; ++a)
#pragma unroll
      for (int b = 0; b < KW; ++b)
        if (a < rn && b < cn && better(v[a * KW + b], best)) {
          best = v[a * KW + b];
          bi = (r0 + a) * s.w + c0 + b;
        }
    y[e] = best;
    argmax[e] = bi;
  }
}

// Each input (ih, iw) sums, over the outputs whose windows contain it in raster order, dy where
// that output's argmax is this input (+0 otherwise, which leaves a sum begun at +0 unchanged).
template <class Div>
__global__ void max_backward_kernel(float* dx, const float* dy, const index_t* argmax,
                                    PoolIdx<typename Div::Int> s, Div by_w, Div by_h, Div by_sh,
                                    Div by_sw) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, s.in_count) {
    I plane, ih, iw;
    split_position(e, by_w, by_h, &plane, &ih, &iw);
    const OutRange rows = pool_outputs_reading_by(ih, s.kh, by_sh, s.ph, s.oh);
    const OutRange cols = pool_outputs_reading_by(iw, s.kw, by_sw, s.pw, s.ow);
    const I out_plane = s.oh * s.ow;
    const float* dyp = dy + plane * out_plane;
    const index_t* ap = argmax + plane * out_plane;
    const index_t me = ih * s.w + iw;
    float acc = 0.0f;
    // dy is loaded whatever the argmax says, so both loads are in flight at once (the window's
    // other inputs read the same dy element: no extra memory traffic).
    for (I oi = I(rows.first); oi < I(rows.last); ++oi)
      for (I oj = I(cols.first); oj < I(cols.last); ++oj) {
        const index_t a = __ldg(ap + (oi * s.ow + oj));
        const float g = __ldg(dyp + (oi * s.ow + oj));
        acc = __fadd_rn(acc, a == me ? g : 0.0f);
      }
    dx[e] = acc;
  }
}

// The CPU sums each window row first (over its columns, from 0), then the rows in order
// starting from the first row's sum, then divides by pool_divisor(eh, ew) rounded to float.
template <class Div>
__global__ void avg_forward_kernel(float* y, const float* x, PoolIdx<typename Div::Int> s,
                                   bool count_include_pad, Div by_ow, Div by_oh) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, s.out_count) {
    I plane, oi, oj;
    split_position(e, by_ow, by_oh, &plane, &oi, &oj);
    const float* xp = x + plane * s.h * s.w;
    const Window wh = pool_window(oi, s.kh, s.sh, s.ph, s.h);
    const Window ww = pool_window(oj, s.kw, s.sw, s.pw, s.w);
    float acc = 0.0f;
    for (I r = I(wh.begin); r < I(wh.end); ++r) {
      float row = 0.0f;
      for (I c = I(ww.begin); c < I(ww.end); ++c) row = __fadd_rn(row, __ldg(xp + (r * s.w + c)));
      acc = r == I(wh.begin) ? row : __fadd_rn(acc, row);
    }
    const double div =
        pool_divisor(divisor_extent(wh, count_include_pad), divisor_extent(ww, count_include_pad));
    y[e] = __fdiv_rn(acc, float(div));
  }
}

// The CPU's order: per output column oj, v = sum over the output rows reading ih of dy / divisor
// (from 0); then the input sums v over the output columns reading iw (from 0).
template <class Div>
__global__ void avg_backward_kernel(float* dx, const float* dy, PoolIdx<typename Div::Int> s,
                                    bool count_include_pad, Div by_w, Div by_h, Div by_sh,
                                    Div by_sw) {
  using I = typename Div::Int;
  FC_GRID_LOOP_AS(I, e, s.in_count) {
    I plane, ih, iw;
    split_position(e, by_w, by_h, &plane, &ih, &iw);
    const OutRange rows = pool_outputs_reading_by(ih, s.kh, by_sh, s.ph, s.oh);
    const OutRange cols = pool_outputs_reading_by(iw, s.kw, by_sw, s.pw, s.ow);
    const float* dyp = dy + plane * s.oh * s.ow;
    float acc = 0.0f;
    for (I oj = I(cols.first); oj < I(cols.last); ++oj) {
      const index_t ew = divisor_extent(pool_window(oj, s.kw, s.sw, s.pw, s.w), count_include_pad);
      float v = 0.0f;
      for (I oi = I(rows.first); oi < I(rows.last); ++oi) {
        const index_t eh =
            divisor_extent(pool_window(oi, s.kh, s.sh, s.ph, s.h), count_include_pad);
        v = __fadd_rn(v, __fdiv_rn(__ldg(dyp + (oi * s.ow + oj)), float(pool_divisor(eh, ew))));
      }
      acc = __fadd_rn(acc, v);
    }
    dx[e] = acc;
  }
}


// The 32-bit path where every size indexed fits (both arrays, the padded extents that
// pool_window and pool_outputs_reading_by work in, the strides).
bool index32_pool(const Pool2dShape& s) {
  return index32_fits({s.n * s.c * s.h * s.w, s.n * s.c * s.oh * s.ow, s.h + 2 * s.ph,
                       s.w + 2 * s.pw, s.kh, s.kw, s.sh, s.sw});
}

#define FC_POOL_FORWARD(kernel, count, ...)                                                 \
  if (index32_pool(s))                                                                      \
    kernel<<<blocks_for(count), kBlock, 0, stream()>>>(__VA_ARGS__, FastDivU32(s.ow),      \
                                                       FastDivU32(s.oh));                   \
  else                                                                                      \
    kernel<<<blocks_for(count), kBlock, 0, stream()>>>(__VA_ARGS__, PlainDiv(s.ow),        \
                                                       PlainDiv(s.oh));                     \
  FC_LAUNCH_CHECK()

#define FC_POOL_BACKWARD(kernel, count, ...)                                              \
  if (index32_pool(s))                                                                    \
    kernel<<<blocks_for(count), kBlock, 0, stream()>>>(                                   \
        __VA_ARGS__, FastDivU32(s.w), FastDivU32(s.h), FastDivU32(s.sh), FastDivU32(s.sw)); \
  else                                                                                    \
    kernel<<<blocks_for(count), kBlock, 0, stream()>>>(                                   \
        __VA_ARGS__, PlainDiv(s.w), PlainDiv(s.h), PlainDiv(s.sh), PlainDiv(s.sw));       \
  FC_LAUNCH_CHECK()

}  // namespace

void max_pool2d_forward(float* y, index_t* argmax, const float* x, const Pool2dShape& s) {
  const index_t count = s.n * s.c * s.oh * s.ow;
  if (count == 0) return;
  if (s.kh == 2 && s.kw == 2) {
    FC_POOL_FORWARD((max_forward_fixed_kernel<2, 2>), count, y, argmax, x, s);
  } else if (s.kh == 3 && s.kw == 3) {
    FC_POOL_FORWARD((max_forward_fixed_kernel<3, 3>), count, y, argmax, x, s);
  } else {
    FC_POOL_FORWARD(max_forward_kernel, count, y, argmax, x, s);
  }
}

void max_pool2d_backward(float* dx, const float* dy, const index_t* argmax, const Pool2dShape& s) {
  const index_t count = s.n * s.c * s.h * s.w;
  if (count == 0) return;
  FC_POOL_BACKWARD(max_backward_kernel, count, dx, dy, argmax, s);
}

void average_pool2d_forward(float* y, const float* x, const Pool2dShape& s,
                            bool count_include_pad) {
  const index_t count = s.n * s.c * s.oh * s.ow;
  if (count == 0) return;
  FC_POOL_FORWARD(avg_forward_kernel, count, y, x, s, count_include_pad);
}

void average_pool2d_backward(float* dx, const float* dy, const Pool2dShape& s,
                             bool count_include_pad) {
  const index_t count = s.n * s.c * s.h * s.w;
  if (count == 0) return;
  FC_POOL_BACKWARD(avg_backward_kernel, count, dx, dy, s, count_include_pad);
}

}  // namespace fastconv::cuda
