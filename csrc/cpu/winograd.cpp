#include "cpu/winograd.h"

#include <cstdint>

#include "cpu/blas.h"
#include "cpu/threads.h"
#include "cpu/winograd_phases.h"
#include "cpu/winograd_rows.h"
#include "cpu/winograd_transforms.h"
#include "cpu/workspace.h"
#include "fastconv/checked.h"

namespace fastconv::cpu {
namespace {

using wino::Plan;
using wino::transform_2d;

// Scratch slots (cpu/workspace.h): per thread, a block's transformed input and products and the
// row buffers of the transforms; the weight gradient's per-slice partial sums (in the product
// domain); the transformed filters.
constexpr std::size_t kThreadSlot = 0;
constexpr std::size_t kPartialSlot = 1;
constexpr std::size_t kFilterSlot = 2;
constexpr std::size_t kBiasSlot = 3;  // db's partial sums: kLanes doubles per slice and channel

// As in the im2col path: dW is summed in at most this many fixed slices of the tiles.
constexpr index_t kMaxSlices = 8;

// The forward's plan: tiles over y's plane, reading x padded by p.
Plan forward_plan(int m, const Conv2dShape& s, const SizeCalc& size) {
  return wino::make_plan(m, s.n, s.c, s.h, s.w, s.k, s.oh, s.ow, s.ph, s.pw, size);
}

// dx's plan: tiles over x's plane, reading dy padded by 2 - p (negative: cropped).
Plan data_grad_plan(int m, const Conv2dShape& s, const SizeCalc& size) {
  return wino::make_plan(m, s.n, s.k, s.oh, s.ow, s.c, s.h, s.w, 2 - s.ph, 2 - s.pw, size);
}

index_t slice_count(const Plan& p) { return min_i(kMaxSlices, p.blocks); }

// U (a*a rows of rows x cols): G g G^T of each 3x3 filter, in double. Filter (r, q) is
// w[r][q] for the forward; with `flip`, w[q][r] turned by 180 degrees (the data gradient's). The
// 1-D transforms run over up to kFilterLanes filters of a row at once (lane = q), each value as
// transform_2d computes it for one filter, so the same doubles; one filter at a time took 4% of
// conv2's forward.
constexpr index_t kFilterLanes = 32;

template <int M>
void transform_filters(float* U, const float* w, index_t rows, index_t cols, bool flip) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
#pragma omp parallel for schedule(static) num_threads(team(rows)) if (rows * cols > 256)
  for (index_t r = 0; r < rows; ++r) {
    double g[9][kFilterLanes], t[A * 3][kFilterLanes], u[A * A][kFilterLanes];
    const double* ip[A];
    double* op[A];
    for (index_t q0 = 0; q0 < cols; q0 += kFilterLanes) {
      const index_t n = min_i(kFilterLanes, cols - q0);
      for (index_t l = 0; l < n; ++l) {
        const index_t q = q0 + l;
        const float* f = flip ? w + (q * rows + r) * 9 : w + (r * cols + q) * 9;
        for (int e = 0; e < 9; ++e) g[e][l] = f[flip ? 8 - e : e];
      }
      // As transform_2d<3, A>: down each column j into t (A x 3), then along t's rows.
      for (int j = 0; j < 3; ++j) {
        for (int i = 0; i < 3; ++i) ip[i] = g[i * 3 + j];
        for (int a = 0; a < A; ++a) op[a] = t[a * 3 + j];
        Var::filter(ip, op, n);
      }
      for (int a = 0; a < A; ++a) {
        for (int j = 0; j < 3; ++j) ip[j] = t[a * 3 + j];
        for (int b = 0; b < A; ++b) op[b] = u[a * A + b];
        Var::filter(ip, op, n);
      }
      for (int xi = 0; xi < A * A; ++xi) {
        float* dst = U + (xi * rows + r) * cols + q0;
        for (index_t l = 0; l < n; ++l) dst[l] = static_cast<float>(u[xi][l]);
      }
    }
  }
}

void check_dims(const Conv2dShape& s) {
  check_blas_dim(s.k, "w.shape[0] (output channels)");
  check_blas_dim(s.c, "w.shape[1] (input channels)");
}

// out = the correlation `p` of in (through mask) with the transformed filters U, plus bias and
// ReLU. Blocks of tiles run in parallel, one thread each.
template <int M>
void correlate(const Plan& p, float* out, const float* in, const float* mask, const float* U,
               const float* bias, bool relu, const char* kernel) {
  constexpr int A = M + 2;
  const SizeCalc size{kernel, "Winograd scratch"};
  const int threads = team(p.blocks);
  const ThreadSlots<float> slots(kThreadSlot, threads, size.add(size.add(p.v, p.prod), p.buf),
                                 size);
#pragma omp parallel num_threads(threads)
  {
    float* V = slots.mine();
    float* P = V + p.v;
    float* buf = P + p.prod;
#pragma omp for schedule(static)
    for (index_t blk = 0; blk < p.blocks; ++blk) {
      const index_t r0 = blk * p.rows, nrows = min_i(p.rows, p.tile_rows - r0);
      const index_t count = nrows * p.tw;
      wino::input_block<M>(V, buf, p, in, mask, r0, nrows);
      for (int xi = 0; xi < A * A; ++xi)
        gemm(false, false, p.cout, count, p.cin, 1.0f, U + xi * p.cout * p.cin, p.cin,
             V + xi * p.cin * p.ld, p.ld, 0.0f, P + xi * p.cout * p.ld, p.ld);
      wino::output_block<M>(out, buf, p, P, bias, relu, r0, nrows);
    }
  }
}

// The filters in the product domain (A*A planes of out x in), in the filter scratch slot; the
// forward and dx differ only in which side is out and whether the filters are flipped.
template <int M>
const float* product_filters(const float* w, const Conv2dShape& s, bool flip,
                             const SizeCalc& size) {
  constexpr int A = M + 2;
  float* U = scratch<float>(
      kFilterSlot, size.mul(A * A, size.mul(size.count(s.k), size.count(s.c))), size);
  if (flip)
    transform_filters<M>(U, w, s.c, s.k, true);
  else
    transform_filters<M>(U, w, s.k, s.c, false);
  return U;
}

template <int M>
void forward(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
             bool relu) {
  check_dims(s);
  const SizeCalc size{"conv2d_forward", "Winograd scratch"};
  const Plan p = forward_plan(M, s, size);
  const float* U = product_filters<M>(w, s, false, size);
  correlate<M>(p, y, x, nullptr, U, b, relu, "conv2d_forward");
}

// Whether dW's GEMMs take V tile-major (transposed per product plane, 8 x 8 blocks): D (k x
// tiles) times V^T is a transposed operand to OpenBLAS, which packs both operands for it, while
// the untransposed product runs its faster small-matrix kernel (ad hoc, one thread, conv2's
// 36 GEMMs of a block: 373 -> 317 us through ctypes, beta 1).
bool transposes_input(const Conv2dShape& s) { return s.c % 8 == 0; }

// A dW thread's floats: a block's V and D, the row buffers and, tile-major, one plane of V
// (ld >= the block's tiles rounded up to 8).
std::size_t dw_thread_floats(const Plan& p, const Conv2dShape& s, const SizeCalc& size) {
  const std::size_t base = size.add(size.add(p.v, p.prod), p.buf);
  return transposes_input(s) ? size.add(base, size.mul(size.count(p.ld), size.count(s.c)))
                             : base;
}

// dW: every slice of blocks sums A dy A^T times (B^T x B)^T over its tiles into its own product
// domain partial (k x c per xi); the slices are added in order, then G^T . G takes the sum back
// to 3x3 filters (in double).
template <int M>
void weight_grad(float* dw, float* db, const float* x, const float* dy, const float* relu_y,
                 const Conv2dShape& s) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
  const SizeCalc size{"conv2d_backward", "Winograd scratch"};
  const Plan p = forward_plan(M, s, size);
  const index_t slices = slice_count(p), usize = A * A * s.k * s.c;
  const int threads = team(slices);
  const bool tile_major = transposes_input(s);
  const ThreadSlots<float> slots(kThreadSlot, threads, dw_thread_floats(p, s, size), size);
  float* partial = scratch<float>(
      kPartialSlot, size.mul(size.count(slices), size.count(usize)), size);
  const index_t lanes = s.k * wino::kLanes;
  double* sums =
      db ? scratch<double>(kBiasSlot, size.mul(size.count(slices), size.count(lanes)), size)
         : nullptr;
#pragma omp parallel num_threads(threads)
  {
    float* V = slots.mine();
    float* D = V + p.v;
    float* buf = D + p.prod;
    float* Vt = buf + p.buf;  // one product plane of V, tile-major (tile_major only)
#pragma omp for schedule(static)
    for (index_t sl = 0; sl < slices; ++sl) {
      float* dU = partial + sl * usize;
      double* sum = sums ? sums + sl * lanes : nullptr;
      if (sum)
        for (index_t e = 0; e < lanes; ++e) sum[e] = 0.0;
      // A slice is an equal share of the tile rows (not of the blocks: 28 blocks in 8 slices
      // are 3 or 4 each, and on 2 threads one thread ran 16 blocks while the other ran 12),
      // cut into equal blocks of at most p.rows.
      const index_t first = sl * p.tile_rows / slices, last = (sl + 1) * p.tile_rows / slices;
      const index_t step = ceil_div(last - first, ceil_div(last - first, p.rows));
      for (index_t r0 = first; r0 < last; r0 += step) {
        const index_t nrows = min_i(step, last - r0);
        const index_t count = nrows * p.tw;
        wino::input_block<M>(V, buf, p, x, nullptr, r0, nrows);
        wino::output_grad_block<M>(D, buf, sum, p, dy, relu_y, r0, nrows);
        const float beta = r0 == first ? 0.0f : 1.0f;
        for (int xi = 0; xi < A * A; ++xi) {
          if (tile_major) {
            wino::transpose8(Vt, s.c, V + xi * s.c * p.ld, p.ld, s.c, ceil_div(count, 8) * 8);
            gemm(false, false, s.k, s.c, count, 1.0f, D + xi * s.k * p.ld, p.ld, Vt, s.c, beta,
                 dU + xi * s.k * s.c, s.c);
          } else {
            gemm(false, true, s.k, s.c, count, 1.0f, D + xi * s.k * p.ld, p.ld,
                 V + xi * s.c * p.ld, p.ld, beta, dU + xi * s.k * s.c, s.c);
          }
        }
      }
    }
  }
  // The slices' sums into slice 0, in slice order: per element the same float adds in the same
  // order on any thread count, but over contiguous memory (summing them per filter pair, 36
  // strided reads a slice, took most of this pass).
  constexpr index_t kChunk = 4096;
  const index_t chunks = ceil_div(usize, kChunk);
#pragma omp parallel for schedule(static) num_threads(team(chunks)) if (slices > 1 && chunks > 4)
  for (index_t ch = 0; ch < chunks; ++ch) {
    const index_t e0 = ch * kChunk, e1 = min_i(usize, e0 + kChunk);
    for (index_t sl = 1; sl < slices; ++sl) {
      const float* from = partial + sl * usize;
      for (index_t e = e0; e < e1; ++e) partial[e] += from[e];
    }
  }
  const index_t pairs = s.k * s.c;
#pragma omp parallel for schedule(static) num_threads(team(pairs)) if (pairs > 1024)
  for (index_t e = 0; e < pairs; ++e) {
    double u[A * A], g[9];
    for (int xi = 0; xi < A * A; ++xi) u[xi] = partial[xi * pairs + e];
    transform_2d<A, 3>(u, g, [](const double* const* i, double* const* o, std::ptrdiff_t n) {
      Var::filter_adjoint(i, o, n);
    });
    for (int t = 0; t < 9; ++t) dw[e * 9 + t] = static_cast<float>(g[t]);
  }
  if (db) {
    for (index_t k = 0; k < s.k; ++k) {
      double total = 0.0;
      for (index_t sl = 0; sl < slices; ++sl)
        for (index_t l = 0; l < wino::kLanes; ++l) total += sums[sl * lanes + k * wino::kLanes + l];
      db[k] = static_cast<float>(total);
    }
  }
}

// dx: the correlation of dy (through the ReLU mask) with the flipped, channel-swapped filters.
template <int M>
void backward(float* dx, float* dw, float* db, const float* x, const float* w, const float* dy,
              const float* relu_y, const Conv2dShape& s) {
  check_dims(s);
  if (dx) {
    const SizeCalc size{"conv2d_backward", "Winograd scratch"};
    const Plan p = data_grad_plan(M, s, size);
    const float* U = product_filters<M>(w, s, true, size);
    correlate<M>(p, dx, dy, relu_y, U, nullptr, false, "conv2d_backward");
  }
  weight_grad<M>(dw, db, x, dy, relu_y, s);
}

}  // namespace

// Rows of at most 2**30 pixels keep a block's GEMM dimensions (a few thousand tiles, or one tile
// row) inside the 32-bit BLAS; wider images run im2col, whose checks name the limit.
bool winograd_applies(const Conv2dShape& s) {
  constexpr index_t kMaxRow = index_t{1} << 30;
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
         s.w <= kMaxRow && s.ow <= kMaxRow;
}

void winograd_forward(int m, float* y, const float* x, const float* w, const float* b,
                      const Conv2dShape& s, bool relu) {
  if (m == 2)
    forward<2>(y, x, w, b, s, relu);
  else
    forward<4>(y, x, w, b, s, relu);
}

void winograd_backward(int m, float* dx, float* dw, float* db, const float* x, const float* w,
                       const float* dy, const float* relu_y, const Conv2dShape& s) {
  if (m == 2)
    backward<2>(dx, dw, db, x, w, dy, relu_y, s);
  else
    backward<4>(dx, dw, db, x, w, dy, relu_y, s);
}

// What the calls reserve together: the forward its per-thread blocks and the filters; the
// backward the larger of its two passes' per-thread blocks, the filters and the slices' partial
// sums (dW's and db's). The larger of the two totals.
std::size_t winograd_scratch_bytes(int m, const Conv2dShape& s) {
  check_dims(s);
  const SizeCalc size{"conv2d_scratch_bytes", "Winograd scratch"};
  const index_t a = m + 2;
  const std::size_t filters =
      size.mul(size.count(a * a), size.mul(size.count(s.k), size.count(s.c)));
  auto threads_of = [&](index_t work, std::size_t per) {
    const std::size_t line = 64 / sizeof(float);
    const std::size_t stride = size.mul(size.add(per, line - 1) / line, line);  // as ThreadSlots
    return size.mul(stride, size.count(team(work)));
  };
  const Plan fwd = forward_plan(m, s, size), dxp = data_grad_plan(m, s, size);
  auto plain = [&](const Plan& p) { return size.add(size.add(p.v, p.prod), p.buf); };
  const std::size_t forward = size.add(threads_of(fwd.blocks, plain(fwd)), filters);
  const std::size_t dw_pass = threads_of(slice_count(fwd), dw_thread_floats(fwd, s, size));
  const std::size_t dx_pass = threads_of(dxp.blocks, plain(dxp));
  const std::size_t bias_sums =  // doubles, counted as two floats each
      size.mul(size.count(slice_count(fwd)), size.mul(size.count(s.k), 2 * wino::kLanes));
  const std::size_t backward = size.add(
      size.add(size.add(dw_pass > dx_pass ? dw_pass : dx_pass, filters),
               size.mul(size.count(slice_count(fwd)), filters)), bias_sums);
  return size.mul(forward > backward ? forward : backward, sizeof(float));
}

}  // namespace fastconv::cpu
