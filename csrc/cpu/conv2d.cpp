#include "cpu/conv2d.h"

#include <atomic>

#include "cpu/blas.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

// Scratch slots: the im2col columns (reused for their gradient in the backward) and a group's
// GEMM-layout matrix (forward: the GEMM result; backward: dy).
constexpr std::size_t kColSlot = 0;
constexpr std::size_t kMatSlot = 1;

std::atomic<std::size_t> g_workspace_limit{std::size_t(16) << 20};

// Below this many elements a parallel region costs more than it saves.
constexpr index_t kParallelMin = 1 << 14;

// The outputs o in [lo, hi) whose tap t reads inside the image, i.e. 0 <= conv_in_coord(o, t) <
// in. Along the width this turns the per-element bounds test into one clipped contiguous range.
struct Span {
  index_t lo, hi;
};

Span reading_span(index_t t, index_t s, index_t p, index_t d, index_t in, index_t out) {
  const index_t base = conv_in_coord(0, t, s, p, d);
  const index_t lo = base >= 0 ? 0 : (-base + s - 1) / s;
  const index_t last = in - 1 - base;
  const index_t hi = last < 0 ? 0 : min_i(out, last / s + 1);
  return {min_i(lo, hi), hi};
}

// col (c*kh*kw rows, nb*oh*ow columns; sample j's columns start at j*oh*ow) from the nb samples
// at x. Each (row, sample) pair fills its own oh*ow run, so the pairs run in parallel.
template <typename T>
void im2col(T* col, const T* x, const Conv2dShape& s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane, rows = s.col_rows();
#pragma omp parallel for collapse(2) schedule(static) if (rows * ld > kParallelMin)
  for (index_t r = 0; r < rows; ++r) {
    for (index_t j = 0; j < nb; ++j) {
      const index_t c = r / (s.kh * s.kw), ki = (r / s.kw) % s.kh, kj = r % s.kw;
      const T* img = x + (j * s.c + c) * s.h * s.w;
      T* out = col + r * ld + j * plane;
      const Span sp = reading_span(kj, s.sw, s.pw, s.dw, s.w, s.ow);
      const index_t iw0 = conv_in_coord(0, kj, s.sw, s.pw, s.dw);
      for (index_t oh = 0; oh < s.oh; ++oh, out += s.ow) {
        const index_t ih = conv_in_coord(oh, ki, s.sh, s.ph, s.dh);
        if (ih < 0 || ih >= s.h) {
          for (index_t ow = 0; ow < s.ow; ++ow) out[ow] = T(0);
          continue;
        }
        const T* row = img + ih * s.w;
        for (index_t ow = 0; ow < sp.lo; ++ow) out[ow] = T(0);
        if (s.sw == 1 && sp.hi > sp.lo) {
          const T* src = row + (iw0 + sp.lo);  // a contiguous copy: the common stride-1 case
          T* dst = out + sp.lo;
          for (index_t i = 0; i < sp.hi - sp.lo; ++i) dst[i] = src[i];
        } else if (s.sw > 1) {
          for (index_t ow = sp.lo; ow < sp.hi; ++ow) out[ow] = row[iw0 + ow * s.sw];
        }
        for (index_t ow = sp.hi; ow < s.ow; ++ow) out[ow] = T(0);
      }
    }
  }
}

// Gather-form col2im: dx for the nb samples at dx from the column gradient. One thread owns a
// whole (sample, channel) plane, so there are no write races. Each input element (ih, iw) is the
// sum, in ascending (ki, kj) order, of the one column entry per tap that read it: the row via
// conv_out_coord, the column by walking the tap's reading span (the inverse map within the row).
// The order is fixed, so the result is deterministic and independent of the thread count.
template <typename T>
void col2im(T* dx, const T* col, const Conv2dShape& s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane;
#pragma omp parallel for collapse(2) schedule(static) if (nb * s.c * s.h * s.w > kParallelMin)
  for (index_t j = 0; j < nb; ++j) {
    for (index_t c = 0; c < s.c; ++c) {
      T* img = dx + (j * s.c + c) * s.h * s.w;
      for (index_t ih = 0; ih < s.h; ++ih) {
        T* drow = img + ih * s.w;
        for (index_t iw = 0; iw < s.w; ++iw) drow[iw] = T(0);
        for (index_t ki = 0; ki < s.kh; ++ki) {
          const index_t oh = conv_out_coord(ih, ki, s.sh, s.ph, s.dh, s.oh);
          if (oh < 0) continue;
          for (index_t kj = 0; kj < s.kw; ++kj) {
            const index_t r = (c * s.kh + ki) * s.kw + kj;
            const T* src = col + r * ld + j * plane + oh * s.ow;
            const Span sp = reading_span(kj, s.sw, s.pw, s.dw, s.w, s.ow);
            const index_t iw0 = conv_in_coord(0, kj, s.sw, s.pw, s.dw);
            if (s.sw == 1 && sp.hi > sp.lo) {
              T* dst = drow + (iw0 + sp.lo);
              const T* from = src + sp.lo;
              for (index_t i = 0; i < sp.hi - sp.lo; ++i) dst[i] += from[i];
            } else if (s.sw > 1) {
              for (index_t ow = sp.lo; ow < sp.hi; ++ow) drow[iw0 + ow * s.sw] += src[ow];
            }
          }
        }
      }
    }
  }
}

// C (m x n) (+)= sum over the reduction, as a fixed sequence of GEMMs over blocks of at most
// kReduceBlock terms, the first with beta `beta0` and the rest with beta = 1. OpenBLAS blocks a
// longer reduction differently in its single- and multi-threaded drivers, so one long GEMM's
// result depends on the thread count in the last bits. With short blocks float32 results are
// independent of it (tested); OpenBLAS's float64 kernels still round some edge columns
// differently per thread split. `a_step`/`b_step`: the pointer advance per reduction index.
template <typename T>
void gemm_reduce_blocked(bool ta, bool tb, index_t m, index_t n, index_t red, const T* a,
                         index_t lda, index_t a_step, const T* b, index_t ldb, index_t b_step,
                         T beta0, T* c, index_t ldc) {
  constexpr index_t kReduceBlock = 256;
  for (index_t r0 = 0; r0 < red; r0 += kReduceBlock) {
    const index_t len = min_i(kReduceBlock, red - r0);
    gemm(ta, tb, m, n, len, T(1), a + r0 * a_step, lda, b + r0 * b_step, ldb,
         r0 == 0 ? beta0 : T(1), c, ldc);
  }
}

// Rows of a GEMM-layout matrix (k rows of `cols`) start as the bias.
template <typename T>
void fill_bias(T* m, const T* bias, index_t k, index_t cols) {
#pragma omp parallel for schedule(static) if (k * cols > kParallelMin)
  for (index_t kk = 0; kk < k; ++kk) {
    T* row = m + kk * cols;
    for (index_t p = 0; p < cols; ++p) row[p] = bias[kk];
  }
}

// A group's GEMM layout (k rows, nb*plane columns) <-> NCHW (nb, k, plane).
template <typename T>
void gemm_to_nchw(T* y, const T* m, index_t nb, index_t k, index_t plane) {
#pragma omp parallel for collapse(2) schedule(static) if (nb * k * plane > kParallelMin)
  for (index_t j = 0; j < nb; ++j) {
    for (index_t kk = 0; kk < k; ++kk) {
      const T* src = m + kk * nb * plane + j * plane;
      T* dst = y + (j * k + kk) * plane;
      for (index_t p = 0; p < plane; ++p) dst[p] = src[p];
    }
  }
}

template <typename T>
void nchw_to_gemm(T* m, const T* y, index_t nb, index_t k, index_t plane) {
#pragma omp parallel for collapse(2) schedule(static) if (nb * k * plane > kParallelMin)
  for (index_t j = 0; j < nb; ++j) {
    for (index_t kk = 0; kk < k; ++kk) {
      const T* src = y + (j * k + kk) * plane;
      T* dst = m + kk * nb * plane + j * plane;
      for (index_t p = 0; p < plane; ++p) dst[p] = src[p];
    }
  }
}

// Samples per GEMM: enough for about kGroupColumns GEMM columns, so that small planes (late
// layers: 7x7 = 49 columns a sample) still make GEMMs OpenBLAS runs efficiently. It depends on the
// shape alone, never on the workspace limit: OpenBLAS computes a GEMM's last columns with other
// kernels, so a sample's result depends (in the last bits) on where it sits in its GEMM. Fixed
// groups make the results bitwise independent of the chunking.
index_t conv2d_group(const Conv2dShape& s) {
  constexpr index_t kGroupColumns = 512;
  return min_i(s.n, (kGroupColumns + s.out_plane() - 1) / s.out_plane());
}

// Scratch: the chunk's columns, plus one group's GEMM-layout matrix where a group has > 1 sample.
std::size_t col_bytes_per_sample(const Conv2dShape& s, std::size_t elem_bytes) {
  return static_cast<std::size_t>(s.col_rows() * s.out_plane()) * elem_bytes;
}

std::size_t group_matrix_bytes(const Conv2dShape& s, std::size_t elem_bytes) {
  const index_t g = conv2d_group(s);
  return g > 1 ? static_cast<std::size_t>(s.k * g * s.out_plane()) * elem_bytes : 0;
}

}  // namespace

void set_conv_workspace_limit(std::size_t bytes) { g_workspace_limit.store(bytes); }
std::size_t conv_workspace_limit() { return g_workspace_limit.load(); }

index_t conv2d_chunk(const Conv2dShape& s, std::size_t elem_bytes) {
  const index_t g = conv2d_group(s);
  const std::size_t limit = conv_workspace_limit(), fixed = group_matrix_bytes(s, elem_bytes);
  const std::size_t per_group = static_cast<std::size_t>(g) * col_bytes_per_sample(s, elem_bytes);
  const std::size_t groups = limit > fixed ? (limit - fixed) / per_group : 0;
  const std::size_t whole = static_cast<std::size_t>((s.n + g - 1) / g);
  // Chunks are whole groups, so group boundaries fall at the same samples for every limit.
  return min_i(s.n, static_cast<index_t>(groups < 1 ? 1 : groups < whole ? groups : whole) * g);
}

std::size_t conv2d_scratch_bytes(const Conv2dShape& s, std::size_t elem_bytes) {
  return static_cast<std::size_t>(conv2d_chunk(s, elem_bytes)) *
             col_bytes_per_sample(s, elem_bytes) +
         group_matrix_bytes(s, elem_bytes);
}

// Per chunk: one im2col, then one GEMM per group of samples; per group y_g (k x nb*oh*ow) =
// W (k x c*kh*kw) * col_g (c*kh*kw x nb*oh*ow). The bias is folded in as the GEMM's initial
// value with beta = 1, so it costs no separate pass over y. A one-sample group's GEMM layout
// already is NCHW, so it writes y directly; larger groups go through a GEMM-layout matrix.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s) {
  const index_t plane = s.out_plane(), rows = s.col_rows(), chunk = conv2d_chunk(s, sizeof(T));
  const index_t group = conv2d_group(s);
  T* col = scratch<T>(kColSlot, static_cast<std::size_t>(rows * chunk * plane));
  T* mat = group > 1 ? scratch<T>(kMatSlot, static_cast<std::size_t>(s.k * group * plane))
                     : nullptr;
  for (index_t n0 = 0; n0 < s.n; n0 += chunk) {
    const index_t nb = min_i(chunk, s.n - n0), ld = nb * plane;
    im2col(col, x + n0 * s.c * s.h * s.w, s, nb);
    for (index_t j0 = 0; j0 < nb; j0 += group) {
      const index_t gb = min_i(group, nb - j0), cols = gb * plane;
      T* yg = y + (n0 + j0) * s.k * plane;
      T* dst = gb == 1 ? yg : mat;
      if (b) fill_bias(dst, b, s.k, cols);
      gemm_reduce_blocked(false, false, s.k, cols, rows, w, rows, 1, col + j0 * plane, ld, ld,
                          b ? T(1) : T(0), dst, cols);
      if (gb > 1) gemm_to_nchw(yg, mat, gb, s.k, plane);
    }
  }
}

// db: one sum per output channel over (n, oh, ow), in that fixed order, in double (a float sum of
// n*oh*ow terms would lose digits); parallel over channels only.
// Per group g (in batch order): dW (k x c*kh*kw) += dy_g (k x nb*oh*ow) * col_g^T, beta = 0 for
// the first group only; then dcol_g = W^T * dy_g, written over col_g (its last use was the dW
// GEMM). A one-sample group uses dy in place (NCHW already is its GEMM layout). Then one
// gather-form col2im per chunk.
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy,
                     const Conv2dShape& s) {
  const index_t plane = s.out_plane(), rows = s.col_rows(), chunk = conv2d_chunk(s, sizeof(T));
  const index_t group = conv2d_group(s);
  if (db) {
#pragma omp parallel for schedule(static)
    for (index_t kk = 0; kk < s.k; ++kk) {
      double acc = 0.0;
      for (index_t n = 0; n < s.n; ++n) {
        const T* g = dy + (n * s.k + kk) * plane;
        for (index_t p = 0; p < plane; ++p) acc += static_cast<double>(g[p]);
      }
      db[kk] = static_cast<T>(acc);
    }
  }
  T* col = scratch<T>(kColSlot, static_cast<std::size_t>(rows * chunk * plane));
  T* mat = group > 1 ? scratch<T>(kMatSlot, static_cast<std::size_t>(s.k * group * plane))
                     : nullptr;
  for (index_t n0 = 0; n0 < s.n; n0 += chunk) {
    const index_t nb = min_i(chunk, s.n - n0), ld = nb * plane;
    im2col(col, x + n0 * s.c * s.h * s.w, s, nb);
    for (index_t j0 = 0; j0 < nb; j0 += group) {
      const index_t gb = min_i(group, nb - j0), cols = gb * plane;
      const T* g = dy + (n0 + j0) * s.k * plane;
      if (gb > 1) {
        nchw_to_gemm(mat, g, gb, s.k, plane);
        g = mat;
      }
      gemm_reduce_blocked(false, true, s.k, rows, cols, g, cols, 1, col + j0 * plane, ld, 1,
                          n0 + j0 == 0 ? T(0) : T(1), dw, rows);
      if (dx) {
        gemm_reduce_blocked(true, false, rows, cols, s.k, w, rows, rows, g, cols, cols, T(0),
                            col + j0 * plane, ld);
      }
    }
    if (dx) col2im(dx + n0 * s.c * s.h * s.w, col, s, nb);
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const Conv2dShape&);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const Conv2dShape&);

}  // namespace fastconv::cpu
