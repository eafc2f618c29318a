// The implicit-GEMM conv2d forward (conv_implicit.h). The GEMM is W (k x R) * X_col (R x P) with
// R = c*kh*kw and P = n*oh*ow, X_col never stored: a block owns a tile of TM*16 output channels by
// kTileN = 64 output pixels; its 256 threads form a 16 x 16 grid, and thread (tx, ty) accumulates
// channels TM*ty .. TM*ty + TM-1 by pixels 4tx .. 4tx+3 in registers. R goes through shared memory
// kChunk = 16 rows at a time, in two buffers: while the block multiplies one chunk, each thread
// holds its share of the next in registers (TM weights, 4 gathered inputs) and stores it into the
// other buffer after, so one barrier a chunk suffices.
//
// Each reduction row costs a thread one 128-bit shared load of its 4 inputs (a warp reads 256
// contiguous bytes: no bank conflict) and one of its 4 weights (TM = 4; two scalar loads for
// TM = 2), both warp-wide broadcasts or contiguous, for 4*TM FMAs. The gather gives each thread
// one pixel for the whole reduction, so its (sample, oh, ow) decoding happens once; each gathered
// element decodes only its row r into (c, ki, kj), by divisors fixed at launch (FastDivU32 in
// int32 where the sizes fit, PlainDiv in int64 otherwise) or, for 3x3 filters, by the constant 3.
//
// With TF32 on (tf32()), the same tiles go through the tensor cores instead: each warp multiplies
// a 16-channel slice of the tile by mma.sync (mma_tf32_chunk), with the same number of
// accumulators a thread, which then stand for other (channel, pixel) positions.
#include "cuda/conv_implicit.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/context.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

constexpr int kThreads = 256;  // 16 x 16
constexpr int kSide = 16;
constexpr int kTileN = 64;  // output pixels a block: kSide threads x 4
constexpr int kChunk = 16;  // reduction rows a shared-memory stage
// The input tile's rows, padded by 8 on the tensor-core path: its fragment reads (row t, column
// g for lane 4g + t) then hit 32 different banks; rows stay 16-byte aligned. (The FP32 path
// reads whole rows, and its registers are tight at 64 a thread: unpadded, it spills nothing.)
template <bool kTf32>
constexpr int kLdX = kTileN + (kTf32 ? 8 : 0);
constexpr index_t kMaxGridY = 65535;
constexpr index_t kMaxGridX = (index_t(1) << 31) - 1;

// Division by a compile-time constant, in the FastDivU32 path's int32: the compiler turns it into
// a multiply and a shift, without even the launch-time divider's parameters.
template <int N>
struct ConstDivU32 {
  using Int = std::int32_t;
  ConstDivU32() = default;
  explicit ConstDivU32(index_t) {}
  FC_HD Int div(Int n) const { return static_cast<Int>(static_cast<std::uint32_t>(n) / N); }
  FC_HD void divmod(Int n, Int* q, Int* r) const {
    *q = div(n);
    *r = n - *q * N;
  }
};

// The shape's sizes in the kernel's index type, with the GEMM's dimensions.
template <class I>
struct Geometry {
  I c, h, w, k, sh, sw, ph, pw, dh, dw, plane;
  I rows;    // R = c*kh*kw
  I pixels;  // P = n*oh*ow
  explicit Geometry(const Conv2dShape& s)
      : c(I(s.c)), h(I(s.h)), w(I(s.w)), k(I(s.k)), sh(I(s.sh)), sw(I(s.sw)), ph(I(s.ph)),
        pw(I(s.pw)), dh(I(s.dh)), dw(I(s.dw)), plane(I(s.out_plane())), rows(I(s.col_rows())),
        pixels(I(s.n * s.out_plane())) {}
};

// 4 floats of shared memory at a 16-byte aligned address, in one 128-bit load on the GPU (the
// emulator reads them one by one: no type punning in host C++).
__device__ __forceinline__ float4 lds4(const float* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const float4*>(p);
#else
  return make_float4(p[0], p[1], p[2], p[3]);
#endif
}

// Where mma.sync exists: the device code for sm_80 and later. Elsewhere (the emulator, the host
// pass, older devices) mma_tf32_chunk runs its twin.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FC_IGEMM_MMA 1
#else
#define FC_IGEMM_MMA 0

// x rounded to TF32 (10 mantissa bits), to nearest with ties away from zero: cvt.rna.tf32.f32.
__device__ __forceinline__ float round_tf32(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // inf, NaN kept
  std::memcpy(&x, &u, sizeof u);
  return x;
}
#endif

// One chunk of the block's product on the tensor cores (TF32 in, FP32 accumulate), for the warp
// at (wm, wn) of the TM x 8/TM grid of warps: its tile is channels 16wm .. 16wm + 15 by pixels
// 8TM*wn .. + 8TM-1, TM mma.sync.m16n8k8 a k-step of 8, acc[i] the i-th's D fragment: lane
// 4g + t holds (channel g + 8(r/2), pixel 8i + 2t + r%2) in acc[i][r] (PTX ISA, "Matrix
// Fragments for mma.m16n8k8", .tf32). ws (ldw floats a row) and xs (kLdX<true>) hold the chunk as
// [reduction row][channel] and [reduction row][pixel].
//
// The emulator runs no PTX: its twin computes each lane's four accumulators straight from
// shared memory, the inputs rounded as cvt.rna rounds them and summed in k order (the tensor
// core's own order within a k-step is unspecified, so the two agree to TF32's tolerance, not
// bit for bit). The twin is plain code, so it also serves devices before sm_80.
template <int TM>
__device__ __forceinline__ void mma_tf32_chunk(float (&acc)[TM][4], const float* ws, int ldw,
                                               const float* xs, int wm, int wn, int lane) {
  const int g = lane / 4, t = lane % 4;
  const float* wa = ws + 16 * wm + g;
  const float* xb = xs + 8 * TM * wn;
#if FC_IGEMM_MMA
  auto tf32 = [](float v) {
    std::uint32_t u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(v));
    return u;
  };
#pragma unroll
  for (int k8 = 0; k8 < kChunk; k8 += 8) {
    const float* a_lo = wa + (k8 + t) * ldw;
    const float* a_hi = a_lo + 4 * ldw;
    const std::uint32_t a0 = tf32(a_lo[0]), a1 = tf32(a_lo[8]), a2 = tf32(a_hi[0]),
                        a3 = tf32(a_hi[8]);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const float* b_lo = xb + (k8 + t) * kLdX<true> + 8 * i + g;
      const std::uint32_t b0 = tf32(b_lo[0]), b1 = tf32(b_lo[4 * kLdX<true>]);
      asm volatile(
          "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
          "{%8,%9}, {%0,%1,%2,%3};\n"
          : "+f"(acc[i][0]), "+f"(acc[i][1]), "+f"(acc[i][2]), "+f"(acc[i][3])
          : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
  }
#else
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float* a = wa + 8 * (r / 2);
      const float* b = xb + 8 * i + 2 * t + r % 2;
      for (int kk = 0; kk < kChunk; ++kk)
        acc[i][r] = fmaf(round_tf32(a[kk * ldw]), round_tf32(b[kk * kLdX<true>]), acc[i][r]);
    }
#endif
}

// Registers: 64 a thread (4 blocks an SM) hold the 32-bit path without spilling; the int64
// fallback's indices need more, so it asks for 2 blocks an SM (up to 128 registers).
template <class Div>
constexpr int kMinBlocks = std::is_same_v<Div, PlainDiv> ? 2 : 4;

#ifdef __launch_bounds__
#define FC_IGEMM_BOUNDS(Div) __launch_bounds__(kThreads, kMinBlocks<Div>)
#else
#define FC_IGEMM_BOUNDS(Div)
#endif

// TM: output channels a thread (the block's tile is 16*TM of them). Div divides by the output
// plane and width, TapDiv by kw and kh (the same index type). kTf32: the product on the tensor
// cores (mma_tf32_chunk) instead of FP32 FMAs; the same accumulators a thread, other positions.
template <int TM, bool kTf32, class Div, class TapDiv>
__global__ void FC_IGEMM_BOUNDS(Div)
    conv_implicit_kernel(float* __restrict__ y, const float* __restrict__ x,
                         const float* __restrict__ w, const float* __restrict__ b,
                         Geometry<typename Div::Int> g, bool relu, Div by_plane, Div by_ow,
                         TapDiv by_kw, TapDiv by_kh) {
  using I = typename Div::Int;
  constexpr int kTileM = kSide * TM;
  // The weights are stored transposed (row kk holds the chunk's column kk of W's tile); the pad
  // of 4 keeps rows 16-byte aligned and spreads a warp's stores over the banks (2-way at most).
  constexpr int kLdW = kTileM + 4;
  alignas(16) __shared__ float ws[2][kChunk][kLdW];
  alignas(16) __shared__ float xs[2][kChunk][kLdX<kTf32>];

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

  float wr[TM], xr[4];
  // The chunk at reduction row r0 into registers: weights w[k0 + ty + 16i][r0 + tx] (16
  // neighbouring threads read 16 neighbouring floats of a row), inputs for rows r0 + gk + 4i.
  auto load = [&](I r0) {
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const I m = k0 + ty + kSide * i, r = r0 + tx;
      wr[i] = m < g.k && r < g.rows ? __ldg(w + (m * g.rows + r)) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const I r = r0 + gk + 4 * i;
      float v = 0.0f;
      if (gvalid && r < g.rows) {
        I ck, kj, c, ki;
        by_kw.divmod(r, &ck, &kj);
        by_kh.divmod(ck, &c, &ki);
        const I ih = ih0 + ki * g.dh, iw = iw0 + kj * g.dw;
        if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
          v = __ldg(xn + (c * in_plane + ih * g.w + iw));
      }
      xr[i] = v;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < TM; ++i) ws[buf][tx][ty + kSide * i] = wr[i];
#pragma unroll
    for (int i = 0; i < 4; ++i) xs[buf][gk + 4 * i][gn] = xr[i];
  };

  float acc[TM][4];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  const I chunks = (g.rows + kChunk - 1) / kChunk;
  if (chunks > 0) {
    load(0);
    store(0);
  }
  __syncthreads();
  for (I ch = 0; ch < chunks; ++ch) {
    const int buf = static_cast<int>(ch & 1);
    const bool more = ch + 1 < chunks;
    if (more) load((ch + 1) * kChunk);
    if constexpr (kTf32) {
      mma_tf32_chunk<TM>(acc, &ws[buf][0][0], kLdW, &xs[buf][0][0], (t / kWarp) % TM,
                         (t / kWarp) / TM, t % kWarp);
    } else {
#pragma unroll
      for (int kk = 0; kk < kChunk; ++kk) {
        float a[TM];
        if constexpr (TM == 4) {
          const float4 q = lds4(&ws[buf][kk][4 * ty]);
          a[0] = q.x, a[1] = q.y, a[2] = q.z, a[3] = q.w;
        } else {
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = ws[buf][kk][TM * ty + i];
        }
        const float4 q = lds4(&xs[buf][kk][4 * tx]);
        const float v[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], v[j], acc[i][j]);
      }
    }
    // The other buffer's last readers finished the previous chunk before the barrier below it.
    if (more) store(buf ^ 1);
    __syncthreads();
  }

  // The epilogue: bias (one rounded add), ReLU (NaN passes), NCHW; channel k0 + ml of pixel
  // (n, pix).
  auto emit = [&](int ml, I n, I pix, float v) {
    const I m = k0 + ml;
    if (m >= g.k) return;
    if (b) v = __fadd_rn(v, __ldg(b + m));
    y[(n * g.k + m) * g.plane + pix] = relu && v < 0.0f ? 0.0f : v;
  };
  I n, pix;
  if constexpr (kTf32) {  // the D fragments' positions (mma_tf32_chunk)
    const int warp = t / kWarp, lane = t % kWarp;
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const I p = p0 + (8 * TM * (warp / TM) + 8 * i + 2 * (lane % 4) + j % 2);
        if (p >= g.pixels) continue;
        by_plane.divmod(p, &n, &pix);
        emit(16 * (warp % TM) + lane / 4 + 8 * (j / 2), n, pix, acc[i][j]);
      }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const I p = p0 + 4 * tx + j;
      if (p >= g.pixels) continue;
      by_plane.divmod(p, &n, &pix);
#pragma unroll
      for (int i = 0; i < TM; ++i) emit(TM * ty + i, n, pix, acc[i][j]);
    }
  }
}

#undef FC_IGEMM_BOUNDS
#undef FC_IGEMM_MMA

std::atomic<bool> g_index64{false};

int tile_rows(const Conv2dShape& s) { return s.k <= 2 * kSide ? 2 : 4; }  // TM

template <int TM, bool kTf32, class Div, class TapDiv>
void launch(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
            bool relu) {
  const index_t pixels = s.n * s.out_plane();
  const dim3 grid(static_cast<unsigned>((pixels + kTileN - 1) / kTileN),
                  static_cast<unsigned>((s.k + kSide * TM - 1) / (kSide * TM)));
  conv_implicit_kernel<TM, kTf32, Div, TapDiv><<<grid, kThreads, 0, stream()>>>(
      y, x, w, b, Geometry<typename Div::Int>(s), relu, Div(s.out_plane()), Div(s.ow),
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

}  // namespace fastconv::cuda
