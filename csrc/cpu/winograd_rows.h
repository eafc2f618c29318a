// The row-wise Winograd transforms of one block of tiles, and the plan that cuts a convolution
// into blocks (cpu/winograd.cpp runs them; internal to it).
//
// Each transform runs over many tiles at once: an image row is split into its m phases (column
// u*m + q of the row is phase q's element u; the input transform splits it a second time from
// column m, for a tile's last two columns), after which each column of a tile is contiguous over
// the tiles of a tile row, and tile rows lie end to end through a block. The 1-D transforms of
// winograd_transforms.h then vectorise over all the block's tiles. The transforms are compiled
// per ISA level and picked at load (FC_SIMD_CLONES: AVX-512, AVX2 + FMA, generic x86-64).
#pragma once
#include <cstddef>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "cpu/simd_clones.h"
#include "cpu/winograd_phases.h"
#include "cpu/winograd_transforms.h"
#include "cpu/workspace.h"
#include "fastconv/geometry.h"

namespace fastconv::cpu::wino {

// A block's transformed input and products together take about this many bytes (at least one
// tile row). More than a 1 MiB L2, yet measured faster than 512 KiB or 1 MiB (and than 3 MiB) on
// the benchmark's 28x28 layer: the GEMMs get 3x wider (16 tile rows of 7 tiles instead of 5),
// and the transforms stream each matrix once, so the L3 serves them well enough.
constexpr double kBlockBytes = 1536 * 1024;

// The transforms run on whole multiples of this many tiles: the vector loops then have no
// scalar remainder. The surplus lanes compute garbage that the next tile row overwrites (or that
// lands in the padding at the end of each row of V, P and D) and is never read as a result.
constexpr index_t kLanes = 8;
// The row transforms take a tile row's lanes in chunks of this many tiles.
constexpr index_t kChunk = 8;
static_assert(kLanes % kChunk == 0 && kChunk % 8 == 0, "split_line splits 8 tiles at a time");

// One Winograd correlation out[o] = sum_t in[o - p + t] * f[t] (per axis), reading zeros outside
// `in`: the tiles cover out's plane. Tiles are numbered over the batch (sample, tile row, tile
// column); a block is `rows` whole tile rows, so each transform runs along a tile row at once.
struct Plan {
  int m, a;
  index_t n, cin, ih, iw, cout, oh, ow, ph, pw;
  index_t th, tw, tile_rows, rows, block, blocks;
  index_t lanes, ld;  // tw rounded up to kLanes; block + kLanes (the row stride of V, P, D)
  std::size_t v, prod, buf;  // a block's transformed input, products; the row buffers
};

inline Plan make_plan(int m, index_t n, index_t cin, index_t ih, index_t iw, index_t cout,
                      index_t oh, index_t ow, index_t ph, index_t pw, const SizeCalc& size) {
  Plan p{m, m + 2, n, cin, ih, iw, cout, oh, ow, ph, pw, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  p.th = ceil_div(oh, m);
  p.tw = ceil_div(ow, m);
  p.tile_rows = n * p.th;  // n * th * tw <= the output's elements, below 2**60
  // Bytes per tile row of a block, in double: c + k can be near 2**62.
  const double per_row = double(p.a) * p.a * (double(cin) + double(cout)) * p.tw * sizeof(float);
  const double fit = kBlockBytes / per_row;
  p.rows = fit >= double(p.tile_rows) ? p.tile_rows : max_i(1, static_cast<index_t>(fit));
  p.block = p.rows * p.tw;
  p.blocks = ceil_div(p.tile_rows, p.rows);
  p.lanes = ceil_div(p.tw, kLanes) * kLanes;
  p.ld = p.block + kLanes;
  const std::size_t sq = size.count(index_t{p.a} * p.a), b = size.count(p.ld);
  const std::size_t tw = size.count(p.lanes), a = size.count(p.a), mm = size.count(m);
  p.v = size.mul(size.mul(sq, size.count(cin)), b);
  p.prod = size.mul(size.mul(sq, size.count(cout)), b);
  // The input transform's a x a row outputs (rows of ld) and the block's padded input rows
  // (rows x a lines of m * (tw + 4)); the output transforms' first pass (m x a rows of ld) and
  // the block's dy rows (rows x m lines of m * tw).
  const std::size_t ps = size.add(tw, 4), ld = size.count(p.ld), rows = size.count(p.rows);
  const std::size_t in_buf =
      size.add(size.mul(sq, ld), size.mul(size.mul(rows, a), size.mul(mm, ps)));
  const std::size_t out_buf =
      size.add(size.mul(size.mul(mm, a), ld), size.mul(size.mul(rows, mm), size.mul(mm, tw)));
  p.buf = in_buf > out_buf ? in_buf : out_buf;
  return p;
}

// A tile row's sample and its first output row.
struct TileRow {
  index_t sample, y0;
};

inline TileRow tile_row(const Plan& p, index_t r) { return {r / p.th, (r % p.th) * p.m}; }

#if defined(__SSE2__)
// Four groups of m = 4 (or 2) consecutive values from src into the phases at dst[q*stride]:
// a 4x4 transpose (or an even/odd shuffle), so the split costs a few shuffles per four tiles.
template <int M>
inline void split4(float* dst, index_t stride, const float* src) {
  if constexpr (M == 4) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + 4);
    __m128 r2 = _mm_loadu_ps(src + 8), r3 = _mm_loadu_ps(src + 12);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + stride, r1);
    _mm_storeu_ps(dst + 2 * stride, r2);
    _mm_storeu_ps(dst + 3 * stride, r3);
  } else {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + 4);
    _mm_storeu_ps(dst, _mm_shuffle_ps(r0, r1, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm_storeu_ps(dst + stride, _mm_shuffle_ps(r0, r1, _MM_SHUFFLE(3, 1, 3, 1)));
  }
}
#endif

#if defined(__SSE2__)
// The inverse of split4, for the outputs: four tiles' values u..u+3 of each of the m phases
// src[j], plus the bias and through the ReLU, into the first `count` (at most 4*m) of the 4*m
// consecutive outputs at dst. A partial group is stored from the registers, four values at a time
// and then one by one: through a buffer and memcpy, its 32-byte loads spanning two of the
// buffer's 16-byte stores failed store-to-load forwarding, 17% of conv2's forward.
template <int M>
inline void merge4(float* dst, const float* const* src, index_t u, float bias, bool relu,
                   index_t count) {
  const __m128 b = _mm_set1_ps(bias), z = _mm_setzero_ps();
  __m128 r[M];
  for (int j = 0; j < M; ++j) {
    r[j] = _mm_add_ps(_mm_loadu_ps(src[j] + u), b);
    if (relu) r[j] = _mm_andnot_ps(_mm_cmplt_ps(r[j], z), r[j]);  // v < 0 -> 0; NaN passes
  }
  if constexpr (M == 4) {
    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
  } else {
    const __m128 lo = _mm_unpacklo_ps(r[0], r[1]), hi = _mm_unpackhi_ps(r[0], r[1]);
    r[0] = lo;
    r[1] = hi;
  }
  int j = 0;
  for (; j < M && 4 * (j + 1) <= count; ++j) _mm_storeu_ps(dst + 4 * j, r[j]);
  const index_t rest = count - 4 * j;
  if (rest > 0) {
    alignas(16) float last[4];
    _mm_store_ps(last, r[j]);
    dst[4 * j] = last[0];
    if (rest > 1) dst[4 * j + 1] = last[1];
    if (rest > 2) dst[4 * j + 2] = last[2];
  }
}
#endif

// line[x] = row[x + c0] for x in [0, len): zero outside [0, w), everywhere for a null row, and
// where the mask (a fused ReLU's output) is not > 0. The split below reads the line zero-padded,
// so it is branch-free: tile rows are short (28 columns in the benchmark's second layer), and
// per-element bounds tests cost more than the transform. A block's lines are all filled before
// any is split: a split reading a line just written (at an offset the stores do not share, with
// padding 1) waited on store-to-load forwarding, which failed, on every load.
// With `zero` false the zeros are taken as already there: a block's lines have the same bounds
// for every channel, so only the first channel's fill writes them (the zeroing, mostly memset
// calls of a few floats, was a few percent of conv2's backward).
__attribute__((always_inline)) inline void fill_line(float* line, const float* row,
                                                     const float* mask, index_t c0, index_t w,
                                                     index_t len, bool zero) {
  const index_t lo = row ? min_i(max_i(-c0, 0), len) : len;  // line[lo, hi) comes from the row
  const index_t hi = row ? max_i(lo, min_i(len, w - c0)) : len;
  if (zero)
    for (index_t x = 0; x < lo; ++x) line[x] = 0.0f;
  if (mask) {
    // Both loads unconditional: a conditional load would keep the loop scalar.
    for (index_t x = lo; x < hi; ++x) {
      const float v = row[x + c0], keep = mask[x + c0];
      line[x] = keep > 0.0f ? v : 0.0f;
    }
  } else {
    for (index_t x = lo; x < hi; ++x) line[x] = row[x + c0];
  }
  if (zero)
    for (index_t x = hi; x < len; ++x) line[x] = 0.0f;
}

// Asks for row[0, w) ahead of its use (the next channel's row of a block: a block reads a few
// rows per plane, too little for the hardware's stream prefetcher to follow across planes, and
// the fills waited on memory).
inline void prefetch_row(const float* row, index_t w) {
#if defined(__SSE2__)
  const char* bytes = reinterpret_cast<const char*>(row);
  for (index_t x = 0; x < w; x += 16) _mm_prefetch(bytes + x * 4, _MM_HINT_T0);
  _mm_prefetch(bytes + (w - 1) * 4, _MM_HINT_T0);
#else
  (void)row;
  (void)w;
#endif
}

// ph[q][u] = line[u*m + q] for u in [0, count): the line split into its m phases, so that column
// j < m of tile u is ph[j][u], contiguous over tiles; with ph2, also ph2[q][u] = line[(u+1)*m +
// q], the columns m.. of each tile (a tile reads m + 2; the line then holds (count + 4) * m
// values, else count * m). count must be a multiple of 8 (kLanes is). Inlined into each
// transform's clones (an indirect call per row through the clone dispatch cost more than the
// split).
template <int M>
__attribute__((always_inline)) inline void split_line(float* ph, float* ph2, index_t stride,
                                                      const float* line, index_t count) {
  for (int half = 0; half < (ph2 ? 2 : 1); ++half) {
    float* dst = half ? ph2 : ph;
    const float* src = line + half * M;
#if FC_WINO_SHUFFLE
    for (index_t u = 0; u < count; u += 8) split8<M>(dst + u, stride, src + u * M);
#elif defined(__SSE2__)
    for (index_t u = 0; u < count; u += 4) split4<M>(dst + u, stride, src + u * M);
#else
    for (index_t u = 0; u < count; ++u)
      for (int q = 0; q < M; ++q) dst[q * stride + u] = src[u * M + q];
#endif
  }
}

// V (a*a rows of cin x block) for the tile rows [r0, r0 + nrows): B^T d B per tile and input
// channel, from `in` (through `mask` where given). Per channel, each of the a input rows of every
// tile row of the block is split into the tiles' columns and transformed along the row (B^T on
// columns), eight tiles at a time (lane = tile in the block); then one pass down the columns (B^T
// on rows, straight into V) runs over the whole block at once.
template <int M>
FC_SIMD_CLONES
void input_block(float* V, float* buf, const Plan& p, const float* in, const float* mask,
                 index_t r0, index_t nrows) {
  using Var = Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.ih * p.iw, tw = p.tw, n = ceil_div(nrows * tw, kLanes) * kLanes;
  // A pass's row stride: the last tile row's split writes p.lanes lanes from (nrows - 1) * tw,
  // at most block + kLanes - 1 < ld, and n is at most that too.
  const index_t ns = p.ld;
  float* across = buf;                 // A values x A input rows x ns
  float* lines = across + A * A * ns;     // nrows x A lines of M * (lanes + 4)
  const index_t ll = M * (p.lanes + 4);
  for (index_t c = 0; c < p.cin; ++c) {
    for (index_t r = 0; r < nrows; ++r) {
      const TileRow tr = tile_row(p, r0 + r);
      const index_t at = (tr.sample * p.cin + c) * plane;
      for (int i = 0; i < A; ++i) {
        const index_t y = tr.y0 - p.ph + i;
        const bool inside = y >= 0 && y < p.ih;
        fill_line(lines + (r * A + i) * ll, inside ? in + at + y * p.iw : nullptr,
                  inside && mask ? mask + at + y * p.iw : nullptr, -p.pw, p.iw, ll, c == 0);
        if (inside && c + 1 < p.cin) {
          prefetch_row(in + at + plane + y * p.iw, p.iw);
          if (mask) prefetch_row(mask + at + plane + y * p.iw, p.iw);
        }
      }
    }
    // Each line, eight tiles at a time: split into the tiles' 2M columns (A used) in a small
    // buffer that stays in registers or L1, then transformed along the row (B^T on columns)
    // straight into `across`. Lanes past a tile row's tw are garbage that the next tile row
    // overwrites (or, after the last, that no result reads).
    alignas(64) float tile_cols[2 * M * kChunk];
    const float* ip[A];
    float* op[A];
    for (int j = 0; j < A; ++j) ip[j] = tile_cols + j * kChunk;
    for (index_t r = 0; r < nrows; ++r) {
      for (int i = 0; i < A; ++i) {
        const float* line = lines + (r * A + i) * ll;
        for (index_t u = 0; u < p.lanes; u += kChunk) {
          split_line<M>(tile_cols, tile_cols + M * kChunk, kChunk, line + u * M, kChunk);
          for (int b = 0; b < A; ++b) op[b] = across + (b * A + i) * ns + r * tw + u;
          Var::input(ip, op, kChunk);
        }
      }
    }
    for (int b = 0; b < A; ++b) {
      for (int i = 0; i < A; ++i) ip[i] = across + (b * A + i) * ns;
      for (int a = 0; a < A; ++a) op[a] = V + ((a * A + b) * p.cin + c) * p.ld;
      Var::input(ip, op, n);
    }
  }
}

// The outputs of tile rows [r0, r0 + nrows) from their products P (a*a rows of cout x block):
// A^T P A, plus the bias, clamped at 0 with `relu`; the parts of edge tiles past the plane are
// dropped. The pass down the columns runs over all the block's tiles at once (lane = tile in the
// block); the pass along each output row, eight tiles at a time, feeds the merge into `out`.
template <int M>
FC_SIMD_CLONES
void output_block(float* out, float* buf, const Plan& p, const float* P, const float* bias,
                  bool relu, index_t r0, index_t nrows) {
  using Var = Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.oh * p.ow, tw = p.tw, n = ceil_div(nrows * tw, kLanes) * kLanes;
  const index_t ns = p.ld;           // a pass's row stride: n <= block + kLanes - 1 < ld
  float* down = buf;                 // M rows x A values x ns
  for (index_t k = 0; k < p.cout; ++k) {
    const float* ip[A];
    float* op[M];
    for (int b = 0; b < A; ++b) {
      for (int a = 0; a < A; ++a) ip[a] = P + ((a * A + b) * p.cout + k) * p.ld;
      for (int i = 0; i < M; ++i) op[i] = down + (i * A + b) * ns;
      Var::output(ip, op, n);
    }
    const float bk = bias ? bias[k] : 0.0f;
    // Each output row of a tile row, eight tiles at a time: A^T along the row into M phases in
    // a small buffer (registers or L1), then merged into the row of `out`.
    alignas(64) float tile_out[M * kChunk];
    const float* src[M];
    for (int j = 0; j < M; ++j) {
      op[j] = tile_out + j * kChunk;
      src[j] = tile_out + j * kChunk;
    }
    for (index_t r = 0; r < nrows; ++r) {
      const TileRow tr = tile_row(p, r0 + r);
      const int rows = static_cast<int>(min_i(M, p.oh - tr.y0));
      for (int i = 0; i < rows; ++i) {
        float* dst = out + (tr.sample * p.cout + k) * plane + (tr.y0 + i) * p.ow;
        for (index_t u = 0; u * M < p.ow; u += kChunk) {
          for (int b = 0; b < A; ++b) ip[b] = down + (i * A + b) * ns + r * tw + u;
          Var::output(ip, op, kChunk);
#if defined(__SSE2__)
          // Four tiles at a time; of the last group (past the plane's edge, or a partial tile: 28
          // columns are 7 tiles) only the outputs inside the row are stored.
          for (index_t g = 0; g < kChunk && (u + g) * M < p.ow; g += 4) {
            const index_t x0 = (u + g) * M;
            merge4<M>(dst + x0, src, g, bk, relu, min_i(4 * M, p.ow - x0));
          }
#else
          for (index_t x = u * M; x < min_i(p.ow, (u + kChunk) * M); ++x) {
            float v = src[(x - u * M) % M][(x - u * M) / M] + bk;
            if (relu) v = v < 0.0f ? 0.0f : v;
            dst[x] = v;
          }
#endif
        }
      }
    }
  }
}

// D (a*a rows of cout x block): A dy A^T for the tile rows [r0, r0 + nrows) and each output
// channel, dy zero past the plane (those outputs do not exist), through the ReLU mask. Each dy
// row of the block is split into phases and transformed along the row, eight tiles at a time
// (lane = tile in the block), then the pass down the columns runs over the whole block at once.
// With `sum` (kLanes doubles per output channel), the masked dy values are also added to the
// channel's lanes: the bias gradient.
template <int M>
FC_SIMD_CLONES
void output_grad_block(float* D, float* buf, double* sum, const Plan& p, const float* dy,
                       const float* mask, index_t r0, index_t nrows) {
  using Var = Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.oh * p.ow, tw = p.tw, n = ceil_div(nrows * tw, kLanes) * kLanes;
  // Row stride of the passes: the last tile row's split writes p.lanes lanes from
  // (nrows - 1) * tw, at most block + kLanes - 1 < ld.
  const index_t ns = p.ld;
  float* across = buf;                 // M rows x A values x ns
  float* lines = across + M * A * ns;  // nrows x M lines of M * lanes
  const index_t ll = M * p.lanes;
  for (index_t k = 0; k < p.cout; ++k) {
    for (index_t r = 0; r < nrows; ++r) {
      const TileRow tr = tile_row(p, r0 + r);
      const index_t at = (tr.sample * p.cout + k) * plane;
      for (int i = 0; i < M; ++i) {
        const index_t y = tr.y0 + i;
        const bool inside = y < p.oh;
        fill_line(lines + (r * M + i) * ll, inside ? dy + at + y * p.ow : nullptr,
                  inside && mask ? mask + at + y * p.ow : nullptr, 0, p.ow, ll, k == 0);
        if (inside && k + 1 < p.cout) {
          prefetch_row(dy + at + plane + y * p.ow, p.ow);
          if (mask) prefetch_row(mask + at + plane + y * p.ow, p.ow);
        }
      }
    }
    // Each line, eight tiles at a time: split into its M phases, then A dy along the row,
    // straight into `across` (as in input_block).
    alignas(64) float tile_cols[M * kChunk];
    const float* ip[A];
    float* op[A];
    for (int j = 0; j < M; ++j) ip[j] = tile_cols + j * kChunk;
    for (index_t r = 0; r < nrows; ++r) {
      for (int i = 0; i < M; ++i) {
        const float* line = lines + (r * M + i) * ll;
        for (index_t u = 0; u < p.lanes; u += kChunk) {
          split_line<M>(tile_cols, nullptr, kChunk, line + u * M, kChunk);
          for (int b = 0; b < A; ++b) op[b] = across + (i * A + b) * ns + r * tw + u;
          Var::output_adjoint(ip, op, kChunk);
        }
      }
    }
    if (sum) {
      // Every dy value of the block is in exactly one line (zeros elsewhere); ll is a multiple
      // of kLanes.
      double* acc = sum + k * kLanes;
      const float* v = lines;
      for (index_t x = 0; x < nrows * M * ll; x += kLanes)
        for (index_t l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(v[x + l]);
    }
    for (int b = 0; b < A; ++b) {
      for (int i = 0; i < M; ++i) ip[i] = across + (i * A + b) * ns;
      for (int a = 0; a < A; ++a) op[a] = D + ((a * A + b) * p.cout + k) * p.ld;
      Var::output_adjoint(ip, op, n);
    }
  }
}

}  // namespace fastconv::cpu::wino
