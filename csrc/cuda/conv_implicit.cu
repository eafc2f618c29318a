// The implicit-GEMM conv2d forward (conv_implicit.h). The GEMM is W (k x R) * X_col (R x P) with
// R = c*kh*kw and P = n*oh*ow, X_col never stored: a block owns a tile of TM*16 output channels by
// 64 output pixels, and igemm_tile.cuh's tile product runs the reduction over R, with W's rows as
// A and the gathered inputs as B.
//
// The gather gives each thread one pixel for the whole reduction, so its (sample, oh, ow)
// decoding happens once; each gathered element decodes only its row r into (c, ki, kj), by
// divisors fixed at launch (FastDivU32 in int32 where the sizes fit, PlainDiv in int64 otherwise)
// or, for 3x3 filters, by the constant 3.
#include "cuda/conv_implicit.h"

#include <atomic>

#include "cuda/context.h"
#include "cuda/igemm_tile.cuh"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

constexpr int kThreads = kIgemmThreads;
constexpr int kSide = kIgemmSide;
constexpr int kTileN = kIgemmTileN;
constexpr int kChunk = kIgemmChunk;
constexpr index_t kMaxGridY = 65535;
constexpr index_t kMaxGridX = (index_t(1) << 31) - 1;

// TM: output channels a thread (the block's tile is 16*TM of them). Div divides by the output
// plane and width, TapDiv by kw and kh (the same index type). kTf32: the product on the tensor
// cores (igemm_mma_chunk) instead of FP32 FMAs; the same accumulators a thread, other positions.
template <int TM, bool kTf32, class Div, class TapDiv>
__global__ void FC_IGEMM_BOUNDS(Div)
    conv_implicit_kernel(float* __restrict__ y, const float* __restrict__ x,
                         const float* __restrict__ w, const float* __restrict__ b,
                         IgemmGeometry<typename Div::Int> g, bool relu, Div by_plane,
                         Div by_ow, TapDiv by_kw, TapDiv by_kh) {
  using I = typename Div::Int;
  constexpr int kTileM = kSide * TM;
  const int t = static_cast<int>(threadIdx.x), tx = t % kSide, ty = t / kSide;
  const I k0 = I(blockIdx.y) * kTileM, p0 = I(blockIdx.x) * kTileN;
  const I in_plane = g.h * g.w;

  // The pixel this thread gathers for (all chunks), and the 4 chunk rows it gathers: gk + 4i.
  const int gn = t % kTileN, gk = t / kTileN;
  const bool gvalid = p0 + gn < g.pixels;
  I ih0 = 0, iw0 = 0;
  const float* xn = x;
  if (gvalid) {
    I n, pix, oy, ox;
    by_plane.divmod(p0 + gn, &n, &pix);
    by_ow.divmod(pix, &oy, &ox);
    ih0 = oy * g.sh - g.ph;
    iw0 = ox * g.sw - g.pw;
    xn = x + n * (g.c * in_plane);
  }

  float acc[TM][4];
  // A: weights w[k0 + ty + 16i][r0 + tx] (16 neighbouring threads read 16 neighbouring floats of
  // a row). B: the inputs of rows r0 + gk + 4i for this thread's pixel.
  igemm_mainloop<TM, kTf32>(
      acc, I(0), g.rows,
      [&](I r0, float (&a)[TM]) {
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const I m = k0 + ty + kSide * i, r = r0 + tx;
          a[i] = m < g.k && r < g.rows ? __ldg(w + (m * g.rows + r)) : 0.0f;
        }
      },
      [&](I r0, float (&v)[4]) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const I r = r0 + gk + 4 * i;
          v[i] = 0.0f;
          if (gvalid && r < g.rows) {
            I ck, kj, c, ki;
            by_kw.divmod(r, &ck, &kj);
            by_kh.divmod(ck, &c, &ki);
            const I ih = ih0 + ki * g.dh, iw = iw0 + kj * g.dw;
            if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
              v[i] = __ldg(xn + (c * in_plane + ih * g.w + iw));
          }
        }
      });

  // The epilogue: bias (one rounded add), ReLU (NaN passes), NCHW; pixel p0 + col decoded once
  // per column.
  int last = -1;
  I n = 0, pix = 0;
  igemm_for_each<TM, kTf32>(acc, [&](int col, int row, float v) {
    const I p = p0 + col, m = k0 + row;
    if (p >= g.pixels || m >= g.k) return;
    if (col != last) {
      by_plane.divmod(p, &n, &pix);
      last = col;
    }
    if (b) v = __fadd_rn(v, __ldg(b + m));
    y[(n * g.k + m) * g.plane + pix] = relu && v < 0.0f ? 0.0f : v;
  });
}

std::atomic<bool> g_index64{false};

int tile_rows(const Conv2dShape& s) { return s.k <= 2 * kSide ? 2 : 4; }  // TM

template <int TM, bool kTf32, class Div, class TapDiv>
void launch(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
            bool relu) {
  const index_t pixels = s.n * s.out_plane();
  const dim3 grid(static_cast<unsigned>((pixels + kTileN - 1) / kTileN),
                  static_cast<unsigned>((s.k + kSide * TM - 1) / (kSide * TM)));
  conv_implicit_kernel<TM, kTf32, Div, TapDiv><<<grid, kThreads, 0, stream()>>>(
      y, x, w, b, IgemmGeometry<typename Div::Int>(s), relu, Div(s.out_plane()), Div(s.ow),
      TapDiv(s.kw), TapDiv(s.kh));
  FC_LAUNCH_CHECK();
}

template <int TM, bool kTf32>
void launch_sized(float* y, const float* x, const float* w, const float* b,
                  const Conv2dShape& s, bool relu) {
  const index_t pixels = s.n * s.out_plane();
  // conv_in_coord stays within (-(h + 2ph), h + 2ph); the tiles may overhang P, k and R by one
  // tile each.
  const bool fits = index32_fits({s.n * s.c * s.h * s.w, s.n * s.k * s.out_plane(),
                                   s.k * s.col_rows(), pixels + kTileN, s.k + kSide * TM,
                                   s.col_rows() + kChunk, s.h + 2 * s.ph, s.w + 2 * s.pw});
  if (!fits || g_index64.load())
    launch<TM, kTf32, PlainDiv, PlainDiv>(y, x, w, b, s, relu);
  else if (s.kh == 3 && s.kw == 3)
    launch<TM, kTf32, FastDivU32, ConstDivU32<3>>(y, x, w, b, s, relu);
  else
    launch<TM, kTf32, FastDivU32, FastDivU32>(y, x, w, b, s, relu);
}

}  // namespace

bool conv2d_implicit_supported(const Conv2dShape& s) {
  const index_t m_tiles = (s.k + kSide * tile_rows(s) - 1) / (kSide * tile_rows(s));
  return m_tiles <= kMaxGridY && (s.n * s.out_plane() + kTileN - 1) / kTileN <= kMaxGridX;
}

void conv2d_forward_implicit(float* y, const float* x, const float* w, const float* b,
                             const Conv2dShape& s, bool relu) {
  if (s.n * s.out_plane() == 0 || s.k == 0) return;
  const bool four = tile_rows(s) == 4;
  if (tf32() && four)
    launch_sized<4, true>(y, x, w, b, s, relu);
  else if (tf32())
    launch_sized<2, true>(y, x, w, b, s, relu);
  else if (four)
    launch_sized<4, false>(y, x, w, b, s, relu);
  else
    launch_sized<2, false>(y, x, w, b, s, relu);
}

void set_conv2d_implicit_index64(bool on) { g_index64.store(on); }
bool conv2d_implicit_index64() { return g_index64.load(); }

}  // namespace fastconv::cuda
