// The implicit-GEMM conv2d weight gradient (conv_implicit_backward.h). As a GEMM, dW (k x R) =
// dy' (k x P) * X_col^T (P x R), with R = c*kh*kw, P = n*oh*ow the reduction and dy' = dy where
// relu_y > 0 (else 0, as the im2col path's nchw_to_gemm masks it). igemm_tile.cuh's tile
// product runs it with dy' as A, read straight from NCHW (a row of A is one channel; 16
// neighbouring threads read 16 neighbouring pixels of its plane), and X_col as B, gathered from
// x: each thread owns one column r = (c, ki, kj) for the whole reduction and decodes it once.
//
// The reduction is long and dW small (the tutorial's conv2: 64 x 288 from 50,176 pixels at batch
// 64), so it is split into slices of P: block (column tile, row tile, z) sums slice z into its own
// partial tile, and wgrad_reduce_kernel then adds the slices up in ascending z, in double,
// rounding once. The slice length depends on the shape and the device's SM count only, so the
// bits do not change from run to run. Where one slice covers P the kernel writes dW itself.
//
// db comes out of the same pass: the blocks of the first column tile also add up the dy' values
// that their A loader fetches. Thread (tx, ty) sums, for each of its rows, the slice's pixels
// tx, tx + 16, ... in ascending order; the 16 threads of a row then combine theirs in a fixed
// butterfly, and the slices are reduced with dW's.
//
// Accuracy: a slice's partials are float sums, as cuBLAS's sgemm and the forward's are (dW: one
// fmaf a product; db: slice/16 terms a thread, then 4 butterfly steps); the sum over the slices
// is in double. A slice is 1/slices of the reduction (the tutorial's conv2 at batch 64 on 132
// SMs: 105 slices of 480 pixels). channel_sum.h sums the bias gradient in double throughout;
// float here keeps the kernel within 64 registers, and the tests hold db to test_conv's float32
// tolerance for n*oh*ow terms. The slices' count and length come from the shape and the SM count
// alone, so the bits repeat from run to run; the forward's set_conv2d_implicit_index64 hook
// switches these kernels to int64 too.
#include "cuda/context.h"
#include "cuda/conv_implicit.h"
#include "cuda/conv_implicit_backward.h"
#include "cuda/device_array.h"
#include "cuda/igemm_tile.cuh"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

constexpr int kSide = kIgemmSide;
constexpr int kTileN = kIgemmTileN;
constexpr int kChunk = kIgemmChunk;
constexpr index_t kMaxGridYZ = 65535;
constexpr index_t kMaxGridX = (index_t(1) << 31) - 1;
// The shortest slice: 16 chunks, so that a block's loop outlasts its start and the partial sums
// written and read back stay a small fraction of the reduction's reads.
constexpr index_t kMinSlice = 16 * kChunk;
// Blocks an SM the slicing aims for (the FP32 int32 kernel's occupancy, kIgemmMinBlocks), and
// the SM count assumed where the device does not say (an H100's or H200's 132).
constexpr index_t kBlocksPerSm = 4;
constexpr int kFallbackSms = 132;

// TM: dW rows (output channels) a thread; the block's tile is 16*TM rows by 64 columns of R.
// dw and db point at slice 0's outputs, slice z's at + z * slice_stride; db is null where no bias
// gradient is wanted. Div divides by the output plane, its width and the filter's kw and kh.
template <int TM, bool kTf32, class Div>
__global__ void FC_IGEMM_BOUNDS(Div)
    wgrad_kernel(float* __restrict__ dw, float* __restrict__ db, const float* __restrict__ x,
                 const float* __restrict__ dy, const float* __restrict__ relu_y,
                 IgemmGeometry<typename Div::Int> g, typename Div::Int slice,
                 typename Div::Int slice_stride, Div by_plane, Div by_ow, Div by_kw, Div by_kh) {
  using I = typename Div::Int;
  constexpr int kTileM = kSide * TM;
  const int t = static_cast<int>(threadIdx.x), tx = t % kSide, ty = t / kSide;
  const I r0 = I(blockIdx.x) * kTileN, k0 = I(blockIdx.y) * kTileM, z = I(blockIdx.z);
  const I q_begin = z * slice, q_end = q_begin + slice < g.pixels ? q_begin + slice : g.pixels;
  const I in_plane = g.h * g.w, in_sample = g.c * in_plane, out_sample = g.k * g.plane;

  // This thread's column of X_col for the whole reduction, and the 4 chunk rows it gathers:
  // gk + 4i. x_c: the channel's plane; the tap's offsets folded into the input coordinates.
  const int gn = t % kTileN, gk = t / kTileN;
  const bool cvalid = r0 + gn < g.rows;
  const float* x_c = x;
  I tap_h = 0, tap_w = 0;
  if (cvalid) {
    I ck, kj, c, ki;
    by_kw.divmod(r0 + gn, &ck, &kj);
    by_kh.divmod(ck, &c, &ki);
    x_c = x + c * in_plane;
    tap_h = ki * g.dh - g.ph;
    tap_w = kj * g.dw - g.pw;
  }

  // db's share of this thread: the first column tile's blocks only (uniform over the block).
  const bool sum_db = db != nullptr && blockIdx.x == 0;
  float dsum[TM];
#pragma unroll
  for (int i = 0; i < TM; ++i) dsum[i] = 0.0f;

  float acc[TM][4];
  igemm_mainloop<TM, kTf32>(
      acc, q_begin, q_end,
      [&](I q0, float (&a)[TM]) {  // A: dy'[n, k0 + ty + 16i, pix] for pixel q = q0 + tx
        const I q = q0 + tx;
        const bool qvalid = q < q_end;
        I n = 0, pix = 0;
        if (qvalid) by_plane.divmod(q, &n, &pix);
        const I at0 = n * out_sample + pix;
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const I m = k0 + ty + kSide * i;
          float v = 0.0f;
          if (qvalid && m < g.k) {
            const I at = at0 + m * g.plane;
            v = __ldg(dy + at);
            if (relu_y && !(__ldg(relu_y + at) > 0.0f)) v = 0.0f;
          }
          a[i] = v;
          if (sum_db) dsum[i] += v;
        }
      },
      [&](I q0, float (&v)[4]) {  // B: x at this thread's tap for pixels q0 + gk + 4i
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const I q = q0 + gk + 4 * i;
          v[i] = 0.0f;
          if (cvalid && q < q_end) {
            I n, pix, oy, ox;
            by_plane.divmod(q, &n, &pix);
            by_ow.divmod(pix, &oy, &ox);
            const I ih = oy * g.sh + tap_h, iw = ox * g.sw + tap_w;
            if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
              v[i] = __ldg(x_c + (n * in_sample + ih * g.w + iw));
          }
        }
      });

  float* dwz = dw + z * slice_stride;
  igemm_for_each<TM, kTf32>(acc, [&](int col, int row, float v) {
    const I r = r0 + col, m = k0 + row;
    if (r < g.rows && m < g.k) dwz[m * g.rows + r] = v;
  });
  if (sum_db) {
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      float s = dsum[i];
      // The 16 threads of a row are lanes 16(ty % 2) .. + 15 of one warp: xor by 8..1 stays in.
      for (int o = kSide / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
      const I m = k0 + ty + kSide * i;
      if (tx == 0 && m < g.k) db[z * slice_stride + m] = s;
    }
  }
}

// out[e] = float(sum over z < slices of part[z * len + e]) in double, ascending z, for e < len:
// dW's k*R entries first, then (where db is given) db's k.
template <class I>
__global__ void wgrad_reduce_kernel(float* __restrict__ dw, float* __restrict__ db,
                                    const float* __restrict__ part, I dw_len, I len, I slices) {
  FC_GRID_LOOP_AS(I, e, len) {
    double s = 0.0;
    for (I z = 0; z < slices; ++z) s += double(__ldg(part + (z * len + e)));
    if (e < dw_len)
      dw[e] = float(s);
    else
      db[e - dw_len] = float(s);
  }
}

int tile_rows(const Conv2dShape& s) { return s.k <= 2 * kSide ? 2 : 4; }  // TM

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

int sm_count() {
  static const int sms = [] {
    int device = 0, n = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        n <= 0) {
      cudaGetLastError();
      return kFallbackSms;
    }
    return n;
  }();
  return sms;
}

// Pixels a slice: enough slices that the grid fills the device once (kBlocksPerSm blocks an SM),
// none shorter than kMinSlice, a whole number of chunks, and at most 65535 of them (grid z).
index_t slice_length(const Conv2dShape& s) {
  const index_t pixels = s.n * s.out_plane(), tm = tile_rows(s);
  const index_t tiles = max_i(1, ceil_div(s.col_rows(), kTileN)) * ceil_div(s.k, kSide * tm);
  const index_t want = max_i(1, ceil_div(kBlocksPerSm * sm_count(), tiles));
  index_t len = ceil_div(ceil_div(max_i(pixels, 1), want), kChunk) * kChunk;
  len = max_i(len, kMinSlice);
  return max_i(len, ceil_div(ceil_div(pixels, kMaxGridYZ), kChunk) * kChunk);
}

template <int TM, bool kTf32, class Div>
void launch(float* dw, float* db, const float* x, const float* dy, const float* relu_y,
            const Conv2dShape& s, index_t slice, index_t slices, index_t slice_stride) {
  using I = typename Div::Int;
  const dim3 grid(static_cast<unsigned>(max_i(1, ceil_div(s.col_rows(), kTileN))),
                  static_cast<unsigned>(ceil_div(s.k, kSide * TM)),
                  static_cast<unsigned>(slices));
  wgrad_kernel<TM, kTf32, Div><<<grid, kIgemmThreads, 0, stream()>>>(
      dw, db, x, dy, relu_y, IgemmGeometry<I>(s), I(slice), I(slice_stride), Div(s.out_plane()),
      Div(s.ow), Div(s.kw), Div(s.kh));
  FC_LAUNCH_CHECK();
}

template <class Div>
void reduce(float* dw, float* db, const float* part, index_t dw_len, index_t len,
            index_t slices) {
  using I = typename Div::Int;
  wgrad_reduce_kernel<I><<<blocks_for(len), kBlock, 0, stream()>>>(dw, db, part, I(dw_len),
                                                                    I(len), I(slices));
  FC_LAUNCH_CHECK();
}

template <class Div>
void run(float* dw, float* db, const float* x, const float* dy, const float* relu_y,
         const Conv2dShape& s) {
  const index_t pixels = s.n * s.out_plane(), slice = slice_length(s);
  const index_t slices = max_i(1, ceil_div(pixels, slice));
  const bool four = tile_rows(s) == 4, tf = tf32();
  auto go = [&](float* dw_out, float* db_out, index_t stride) {
    if (tf && four)
      launch<4, true, Div>(dw_out, db_out, x, dy, relu_y, s, slice, slices, stride);
    else if (tf)
      launch<2, true, Div>(dw_out, db_out, x, dy, relu_y, s, slice, slices, stride);
    else if (four)
      launch<4, false, Div>(dw_out, db_out, x, dy, relu_y, s, slice, slices, stride);
    else
      launch<2, false, Div>(dw_out, db_out, x, dy, relu_y, s, slice, slices, stride);
  };
  if (slices == 1) return go(dw, db, 0);
  const index_t dw_len = s.k * s.col_rows(), len = dw_len + (db ? s.k : 0);
  DeviceArray part({slices * len}, DType::f32);
  float* p = part.data<float>();
  go(p, db ? p + dw_len : nullptr, len);
  reduce<Div>(dw, db, p, dw_len, len, slices);
}

}  // namespace

bool conv2d_wgrad_implicit_supported(const Conv2dShape& s) {
  return ceil_div(s.k, kSide * tile_rows(s)) <= kMaxGridYZ &&
         ceil_div(s.col_rows(), kTileN) <= kMaxGridX;
}

void conv2d_wgrad_implicit(float* dw, float* db, const float* x, const float* dy,
                           const float* relu_y, const Conv2dShape& s) {
  if (s.k == 0) return;
  const index_t pixels = s.n * s.out_plane(), slice = slice_length(s);
  const index_t slices = max_i(1, ceil_div(pixels, slice));
  const index_t tm = tile_rows(s), rows = s.col_rows();
  // As the forward: conv input coordinates stay within (-(h + 2ph), h + 2ph); tiles overhang k,
  // R and the slices by one each; the partial buffer holds slices * (k*R + k).
  const bool fits = index32_fits(
      {s.n * s.c * s.h * s.w, s.n * s.k * s.out_plane(), (s.k + kSide * tm) * (rows + kTileN),
       pixels + slice + kChunk, slices * (s.k * rows + s.k) + s.k, s.h + 2 * s.ph,
       s.w + 2 * s.pw, s.kh * s.dh + s.h, s.kw * s.dw + s.w});
  if (!fits || conv2d_implicit_index64())
    run<PlainDiv>(dw, db, x, dy, relu_y, s);
  else
    run<FastDivU32>(dw, db, x, dy, relu_y, s);
}

}  // namespace fastconv::cuda
