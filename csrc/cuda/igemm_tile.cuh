// The block-level tile product shared by the implicit-GEMM conv kernels (conv_implicit.cu and the
// backward's): C_tile (16*TM x kTileN) = sum over reduction rows r of A(m, r) * B(r, n), where A
// and B are never stored whole but gathered by the caller's loaders chunk by chunk. The kernels
// differ only in what they gather and where they write; the tiling, the double buffering and the
// product (FP32 FMA, or TF32 mma.sync) are these.
//
// A block has kThreads = 256 threads, a 16 x 16 grid (tx = t % 16, ty = t / 16) for the FMA
// product: thread (tx, ty) accumulates tile rows TM*ty .. TM*ty + TM-1 by columns 4tx .. 4tx+3.
// The reduction goes through shared memory kChunk = 16 rows at a time, in two buffers: while the
// block multiplies one chunk, each thread holds its share of the next in registers and stores it
// into the other buffer after, so one barrier a chunk suffices.
//
// Loaders (called by every thread, with the chunk's first row r0):
//   load_a(r0, float (&a)[TM]): a[i] = A(ty + 16i, r0 + tx), 0 past the tile's rows or r_end;
//   load_b(r0, float (&b)[4]):  b[i] = B(r0 + gk + 4i, gn), gn = t % 64 and gk = t / 64, 0 past
//                               the tile's columns or r_end.
// A's loads run along r (16 neighbouring threads, 16 neighbouring r); B's along the columns.
//
// Each reduction row costs a thread one 128-bit shared load of its 4 B values (a warp reads 256
// contiguous bytes: no bank conflict) and one of its 4 A values (TM = 4; two scalar loads for
// TM = 2), for 4*TM FMAs. With TF32, each warp multiplies a 16-row slice of the tile by mma.sync
// (igemm_mma_chunk), with the same number of accumulators a thread, which then stand for other
// (row, column) positions: igemm_for_each says which.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/kernels_common.cuh"
#include "fastconv/geometry.h"

namespace fastconv::cuda {

constexpr int kIgemmThreads = 256;  // 16 x 16
constexpr int kIgemmSide = 16;
constexpr int kIgemmTileN = 64;  // tile columns: kIgemmSide threads x 4
constexpr int kIgemmChunk = 16;  // reduction rows a shared-memory stage
// B's rows, padded by 8 on the tensor-core path: its fragment reads (row t, column g for lane
// 4g + t) then hit 32 different banks; rows stay 16-byte aligned. (The FP32 path reads whole
// rows, and its registers are tight at 64 a thread: unpadded, it spills nothing.)
template <bool kTf32>
constexpr int kIgemmLdB = kIgemmTileN + (kTf32 ? 8 : 0);

// A conv shape's sizes in a kernel's index type, with the forward GEMM's dimensions.
template <class I>
struct IgemmGeometry {
  I c, h, w, k, sh, sw, ph, pw, dh, dw, plane;
  I rows;    // R = c*kh*kw
  I pixels;  // P = n*oh*ow
  explicit IgemmGeometry(const Conv2dShape& s)
      : c(I(s.c)), h(I(s.h)), w(I(s.w)), k(I(s.k)), sh(I(s.sh)), sw(I(s.sw)), ph(I(s.ph)),
        pw(I(s.pw)), dh(I(s.dh)), dw(I(s.dw)), plane(I(s.out_plane())), rows(I(s.col_rows())),
        pixels(I(s.n * s.out_plane())) {}
};

// Registers: 64 a thread (4 blocks an SM) hold the forward's 32-bit path without spilling; the
// int64 fallback's indices need more, so it asks for 2 blocks an SM (up to 128 registers).
template <class Div>
constexpr int kIgemmMinBlocks = std::is_same_v<Div, PlainDiv> ? 2 : 4;

#ifdef __launch_bounds__
#define FC_IGEMM_BOUNDS(Div) __launch_bounds__(kIgemmThreads, kIgemmMinBlocks<Div>)
#else
#define FC_IGEMM_BOUNDS(Div)
#endif

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
// pass, older devices) igemm_mma_chunk runs its twin.
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
// at (wm, wn) of the TM x 8/TM grid of warps: its tile is rows 16wm .. 16wm + 15 by columns
// 8TM*wn .. + 8TM-1, TM mma.sync.m16n8k8 a k-step of 8, acc[i] the i-th's D fragment: lane
// 4g + t holds (row g + 8(r/2), column 8i + 2t + r%2) in acc[i][r] (PTX ISA, "Matrix Fragments
// for mma.m16n8k8", .tf32). as (lda floats a row) and bs (kIgemmLdB<true>) hold the chunk as
// [reduction row][tile row] and [reduction row][tile column].
//
// The emulator runs no PTX: its twin computes each lane's four accumulators straight from
// shared memory, the inputs rounded as cvt.rna rounds them and summed in k order (the tensor
// core's own order within a k-step is unspecified, so the two agree to TF32's tolerance, not
// bit for bit). The twin is plain code, so it also serves devices before sm_80.
template <int TM>
__device__ __forceinline__ void igemm_mma_chunk(float (&acc)[TM][4], const float* as, int lda,
                                                const float* bs, int wm, int wn, int lane) {
  constexpr int kLdB = kIgemmLdB<true>;
  const int g = lane / 4, t = lane % 4;
  const float* wa = as + 16 * wm + g;
  const float* xb = bs + 8 * TM * wn;
#if FC_IGEMM_MMA
  auto tf32 = [](float v) {
    std::uint32_t u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(v));
    return u;
  };
#pragma unroll
  for (int k8 = 0; k8 < kIgemmChunk; k8 += 8) {
    const float* a_lo = wa + (k8 + t) * lda;
    const float* a_hi = a_lo + 4 * lda;
    const std::uint32_t a0 = tf32(a_lo[0]), a1 = tf32(a_lo[8]), a2 = tf32(a_hi[0]),
                        a3 = tf32(a_hi[8]);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const float* b_lo = xb + (k8 + t) * kLdB + 8 * i + g;
      const std::uint32_t b0 = tf32(b_lo[0]), b1 = tf32(b_lo[4 * kLdB]);
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
      for (int kk = 0; kk < kIgemmChunk; ++kk)
        acc[i][r] = fmaf(round_tf32(a[kk * lda]), round_tf32(b[kk * kLdB]), acc[i][r]);
    }
#endif
}

// acc (zeroed here) = the tile's product over reduction rows [r_begin, r_end), in ascending
// chunks from r_begin; each accumulator sums its products from +0 in ascending r (one fmaf each;
// with TF32, one mma.sync per 8). The loaders as above.
template <int TM, bool kTf32, class I, class LoadA, class LoadB>
__device__ __forceinline__ void igemm_mainloop(float (&acc)[TM][4], I r_begin, I r_end,
                                               LoadA&& load_a, LoadB&& load_b) {
  constexpr int kTileM = kIgemmSide * TM;
  // A is stored transposed (row kk holds the chunk's column kk of A's tile); the pad of 4 keeps
  // rows 16-byte aligned and spreads a warp's stores over the banks (2-way at most).
  constexpr int kLdA = kTileM + 4;
  alignas(16) __shared__ float as[2][kIgemmChunk][kLdA];
  alignas(16) __shared__ float bs[2][kIgemmChunk][kIgemmLdB<kTf32>];

  const int t = static_cast<int>(threadIdx.x), tx = t % kIgemmSide, ty = t / kIgemmSide;
  const int gn = t % kIgemmTileN, gk = t / kIgemmTileN;
  float ar[TM], br[4];
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < TM; ++i) as[buf][tx][ty + kIgemmSide * i] = ar[i];
#pragma unroll
    for (int i = 0; i < 4; ++i) bs[buf][gk + 4 * i][gn] = br[i];
  };

#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  const I chunks = r_end > r_begin ? (r_end - r_begin + kIgemmChunk - 1) / kIgemmChunk : I(0);
  if (chunks > 0) {
    load_a(r_begin, ar);
    load_b(r_begin, br);
    store(0);
  }
  __syncthreads();
  for (I ch = 0; ch < chunks; ++ch) {
    const int buf = static_cast<int>(ch & 1);
    const bool more = ch + 1 < chunks;
    if (more) {
      load_a(r_begin + (ch + 1) * kIgemmChunk, ar);
      load_b(r_begin + (ch + 1) * kIgemmChunk, br);
    }
    if constexpr (kTf32) {
      igemm_mma_chunk<TM>(acc, &as[buf][0][0], kLdA, &bs[buf][0][0], (t / kWarp) % TM,
                          (t / kWarp) / TM, t % kWarp);
    } else {
#pragma unroll
      for (int kk = 0; kk < kIgemmChunk; ++kk) {
        float a[TM];
        if constexpr (TM == 4) {
          const float4 q = lds4(&as[buf][kk][4 * ty]);
          a[0] = q.x, a[1] = q.y, a[2] = q.z, a[3] = q.w;
        } else {
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = as[buf][kk][TM * ty + i];
        }
        const float4 q = lds4(&bs[buf][kk][4 * tx]);
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
}

// f(column, row, value) for each of the thread's accumulators, with its tile column (< 64) and
// tile row (< 16*TM), column by column (so that a caller decoding the column does it once per
// column on the FMA path).
template <int TM, bool kTf32, class F>
__device__ __forceinline__ void igemm_for_each(const float (&acc)[TM][4], F&& f) {
  const int t = static_cast<int>(threadIdx.x);
  if constexpr (kTf32) {  // the D fragments' positions (igemm_mma_chunk)
    const int warp = t / kWarp, lane = t % kWarp;
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        f(8 * TM * (warp / TM) + 8 * i + 2 * (lane % 4) + j % 2,
          16 * (warp % TM) + lane / 4 + 8 * (j / 2), acc[i][j]);
  } else {
    const int tx = t % kIgemmSide, ty = t / kIgemmSide;
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int i = 0; i < TM; ++i) f(4 * tx + j, TM * ty + i, acc[i][j]);
  }
}

}  // namespace fastconv::cuda
