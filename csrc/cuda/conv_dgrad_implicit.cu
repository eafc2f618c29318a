// The implicit-GEMM conv2d data gradient (conv_implicit_backward.h). As a GEMM, dx = W' * dY':
// rows are input channels c, columns input pixels (n, ih, iw), the reduction runs over (k, ki, kj)
// with W'(c, (k, ki, kj)) = w[k, c, ki, kj] and dY'((k, ki, kj), pixel) = the (masked) dy at the
// output position the tap (ki, kj) of that pixel reaches, 0 where it reaches none. Neither is
// stored: a block owns 16*TM channels by 64 pixels and igemm_tile.cuh's tile product gathers both
// chunk by chunk.
//
// With stride s, input row ih is reached by tap ki only where (ih + ph - ki*dh) is a multiple of
// s, which depends on ih % s alone. So the input pixels are split by phase (ih % sh, iw % sw) and
// each phase is one launch whose reduction holds only the taps that land there: no row of the
// GEMM is a known zero, and a stride-2 conv's four phases do the work of one stride-1 pass. In a
// phase, the landing taps are ki = ki0 + j*step (step = sh / gcd(sh, dh)), and the output row
// they reach is oh = qh + base - j*dstep for ih = rh + qh*sh (dstep = dh / gcd(sh, dh)): linear,
// with no division by the stride per element. A phase no tap reaches gets an empty reduction, and
// its pixels are written +0.
//
// Determinism: each dx element is written by one thread, which sums its phase's rows from +0 in
// ascending (k, ki, kj) order (one fmaf each; with TF32, one mma.sync per 8): the same bits on
// every run, in int32 or int64 index math alike.
#include <atomic>
#include <numeric>

#include "cuda/context.h"
#include "cuda/conv_implicit.h"
#include "cuda/conv_implicit_backward.h"
#include "cuda/igemm_tile.cuh"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

constexpr int kSide = kIgemmSide;
constexpr int kTileN = kIgemmTileN;
constexpr index_t kMaxGridY = 65535;
constexpr index_t kMaxGridX = (index_t(1) << 31) - 1;

// One spatial axis of a phase: the input positions r + q*s (q < count) and the taps that land on
// them, ki = t0 + j*step (j < taps), reaching output position q + base - j*dstep.
struct PhaseAxis {
  index_t r, count, t0, step, taps, base, dstep;
};

PhaseAxis phase_axis(index_t in, index_t kernel, index_t s, index_t p, index_t d, index_t r) {
  PhaseAxis a{r, ceil_div(in - r, s), 0, 0, 0, 0, 0};
  const index_t g = std::gcd(s, d);
  a.step = s / g;
  a.dstep = d / g;
  // The landing taps repeat every `step`: the first, if any, is below it.
  a.t0 = kernel;
  for (index_t ki = 0; ki < min_i(kernel, a.step); ++ki)
    if ((r + p - ki * d) % s == 0) {
      a.t0 = ki;
      break;
    }
  if (a.t0 < kernel) {
    a.taps = (kernel - 1 - a.t0) / a.step + 1;
    a.base = (r + p - a.t0 * d) / s;  // exact: may be negative
  }
  return a;
}

// A phase's GEMM in a kernel's index type.
template <class I>
struct DgradPhase {
  I c, k, w, in_plane, oh, ow, plane, kw, taps;  // taps = kh*kw, w's stride between channels
  I pixels;                                      // n * (pixels of the phase in one sample)
  I rows;                                        // k * (landing taps)
  I rh, rw, sh, sw, ki0, kj0, step_h, step_w, base_h, base_w, dstep_h, dstep_w;
  DgradPhase(const Conv2dShape& s, const PhaseAxis& y, const PhaseAxis& x)
      : c(I(s.c)), k(I(s.k)), w(I(s.w)), in_plane(I(s.h * s.w)), oh(I(s.oh)), ow(I(s.ow)),
        plane(I(s.out_plane())), kw(I(s.kw)), taps(I(s.kh * s.kw)),
        pixels(I(s.n * y.count * x.count)), rows(I(s.k * y.taps * x.taps)), rh(I(y.r)),
        rw(I(x.r)), sh(I(s.sh)), sw(I(s.sw)), ki0(I(y.t0)), kj0(I(x.t0)), step_h(I(y.step)),
        step_w(I(x.step)), base_h(I(y.base)), base_w(I(x.base)), dstep_h(I(y.dstep)),
        dstep_w(I(x.dstep)) {}
};

// TM: input channels a thread (the block's tile is 16*TM of them). Div divides by the phase's
// pixels a sample and a row, TapDiv by its landing taps a row and a column. kTf32: the product on
// the tensor cores instead of FP32 FMAs.
template <int TM, bool kTf32, class Div, class TapDiv>
__global__ void FC_IGEMM_BOUNDS(Div)
    dgrad_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                 const float* __restrict__ w, const float* __restrict__ relu_y,
                 DgradPhase<typename Div::Int> g, Div by_sample, Div by_row, TapDiv by_tw,
                 TapDiv by_th) {
  using I = typename Div::Int;
  constexpr int kTileM = kSide * TM;
  const int t = static_cast<int>(threadIdx.x), tx = t % kSide, ty = t / kSide;
  const I c0 = I(blockIdx.y) * kTileM, p0 = I(blockIdx.x) * kTileN;

  // The pixel this thread gathers for (all chunks): its sample's dy (and mask), and the output
  // position its first landing tap reaches.
  const int gn = t % kTileN, gk = t / kTileN;
  const bool gvalid = p0 + gn < g.pixels;
  I oh0 = 0, ow0 = 0;
  const float* dyn = dy;
  const float* mn = relu_y;
  if (gvalid) {
    I n, q, qh, qw;
    by_sample.divmod(p0 + gn, &n, &q);
    by_row.divmod(q, &qh, &qw);
    oh0 = qh + g.base_h;
    ow0 = qw + g.base_w;
    dyn = dy + n * (g.k * g.plane);
    if (relu_y) mn = relu_y + n * (g.k * g.plane);
  }
  // Reduction row r as (output channel, landing tap j of the rows, of the columns).
  auto decode = [&](I r, I* kk, I* jh, I* jw) {
    I kt;
    by_tw.divmod(r, &kt, jw);
    by_th.divmod(kt, kk, jh);
  };

  float acc[TM][4];
  igemm_mainloop<TM, kTf32>(
      acc, I(0), g.rows,
      // A: w[kk, c0 + ty + 16i, ki, kj] for row r0 + tx, one decode for the TM channels.
      [&](I r0, float (&a)[TM]) {
        const I r = r0 + tx;
        I kk = 0, jh = 0, jw = 0;
        if (r < g.rows) decode(r, &kk, &jh, &jw);
        const I tap = (g.ki0 + jh * g.step_h) * g.kw + g.kj0 + jw * g.step_w;
        const float* wr = w + (kk * g.c * g.taps + tap);
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const I m = c0 + ty + kSide * i;
          a[i] = m < g.c && r < g.rows ? __ldg(wr + m * g.taps) : 0.0f;
        }
      },
      // B: the masked dy of rows r0 + gk + 4i for this thread's pixel, 0 off the output.
      [&](I r0, float (&v)[4]) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const I r = r0 + gk + 4 * i;
          v[i] = 0.0f;
          if (gvalid && r < g.rows) {
            I kk, jh, jw;
            decode(r, &kk, &jh, &jw);
            const I oy = oh0 - jh * g.dstep_h, ox = ow0 - jw * g.dstep_w;
            if (oy >= 0 && oy < g.oh && ox >= 0 && ox < g.ow) {
              const I at = kk * g.plane + oy * g.ow + ox;
              // The ReLU's gradient mask: dy where relu_y > 0, else +0 (a NaN in relu_y
              // masks, a NaN in dy passes), as the masked layout pass and the CPU do.
              if (!mn || __ldg(mn + at) > 0.0f) v[i] = __ldg(dyn + at);
            }
          }
        }
      });

  // The epilogue: NCHW at the phase's pixel, decoded once per column.
  int last = -1;
  I at = 0;
  igemm_for_each<TM, kTf32>(acc, [&](int col, int row, float v) {
    const I p = p0 + col, m = c0 + row;
    if (p >= g.pixels || m >= g.c) return;
    if (col != last) {
      I n, q, qh, qw;
      by_sample.divmod(p, &n, &q);
      by_row.divmod(q, &qh, &qw);
      at = n * (g.c * g.in_plane) + (g.rh + qh * g.sh) * g.w + g.rw + qw * g.sw;
      last = col;
    }
    dx[at + m * g.in_plane] = v;
  });
}

int tile_rows(const Conv2dShape& s) { return s.c <= 2 * kSide ? 2 : 4; }  // TM

template <int TM, bool kTf32, class Div, class TapDiv>
void launch(float* dx, const float* dy, const float* w, const float* relu_y, const Conv2dShape& s,
            const PhaseAxis& y, const PhaseAxis& x) {
  const DgradPhase<typename Div::Int> g(s, y, x);
  const dim3 grid(static_cast<unsigned>((s.n * y.count * x.count + kTileN - 1) / kTileN),
                  static_cast<unsigned>((s.c + kSide * TM - 1) / (kSide * TM)));
  // A phase no tap reaches divides by nothing: 1 stands in.
  dgrad_kernel<TM, kTf32, Div, TapDiv><<<grid, kIgemmThreads, 0, stream()>>>(
      dx, dy, w, relu_y, g, Div(y.count * x.count), Div(x.count), TapDiv(max_i(1, x.taps)),
      TapDiv(max_i(1, y.taps)));
  FC_LAUNCH_CHECK();
}

template <int TM, bool kTf32>
void launch_phases(float* dx, const float* dy, const float* w, const float* relu_y,
                   const Conv2dShape& s) {
  // Every value of the index math stays within these: the arrays, the tiles' overhang of one
  // tile in each GEMM dimension, and the output positions a tap may reach, in (-(kh*dh), h + ph].
  const bool fits =
      !conv2d_implicit_index64() &&
      index32_fits({s.n * s.c * s.h * s.w, s.n * s.k * s.out_plane(), s.k * s.col_rows(),
                    s.n * s.h * s.w + kTileN, s.c + kSide * TM, s.k * s.kh * s.kw + kIgemmChunk,
                    s.h + s.ph + s.kh * s.dh + 1, s.w + s.pw + s.kw * s.dw + 1});
  for (index_t rh = 0; rh < min_i(s.sh, s.h); ++rh) {
    const PhaseAxis y = phase_axis(s.h, s.kh, s.sh, s.ph, s.dh, rh);
    for (index_t rw = 0; rw < min_i(s.sw, s.w); ++rw) {
      const PhaseAxis x = phase_axis(s.w, s.kw, s.sw, s.pw, s.dw, rw);
      if (!fits)
        launch<TM, kTf32, PlainDiv, PlainDiv>(dx, dy, w, relu_y, s, y, x);
      else if (y.taps == 3 && x.taps == 3)  // a stride-1 3x3 filter
        launch<TM, kTf32, FastDivU32, ConstDivU32<3>>(dx, dy, w, relu_y, s, y, x);
      else
        launch<TM, kTf32, FastDivU32, FastDivU32>(dx, dy, w, relu_y, s, y, x);
    }
  }
}

}  // namespace

bool conv2d_dgrad_implicit_supported(const Conv2dShape& s) {
  const index_t m_tiles = (s.c + kSide * tile_rows(s) - 1) / (kSide * tile_rows(s));
  // Phase (0, 0) has the most pixels.
  const index_t pixels = s.n * ceil_div(s.h, s.sh) * ceil_div(s.w, s.sw);
  return m_tiles <= kMaxGridY && (pixels + kTileN - 1) / kTileN <= kMaxGridX;
}

void conv2d_dgrad_implicit(float* dx, const float* dy, const float* w, const float* relu_y,
                           const Conv2dShape& s) {
  if (s.n * s.h * s.w == 0 || s.c == 0) return;
  const bool four = tile_rows(s) == 4;
  if (tf32() && four)
    launch_phases<4, true>(dx, dy, w, relu_y, s);
  else if (tf32())
    launch_phases<2, true>(dx, dy, w, relu_y, s);
  else if (four)
    launch_phases<4, false>(dx, dy, w, relu_y, s);
  else
    launch_phases<2, false>(dx, dy, w, relu_y, s);
}

}  // namespace fastconv::cuda
