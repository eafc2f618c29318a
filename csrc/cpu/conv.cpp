#include "cpu/conv.h"

#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "cpu/bit_select.h"
#include "cpu/blas.h"
#include "cpu/threads.h"
#include "cpu/winograd.h"
#include "cpu/winograd_choice.h"
#include "cpu/workspace.h"
#include "fastconv/checked.h"
#include "fastconv/text.h"

namespace fastconv::cpu {
namespace {

// Scratch buffers (cpu/workspace.h): one slot per thread holding a group's im2col columns (reused
// for their gradient in the backward) followed by its GEMM-layout matrix (forward: the GEMM
// result; backward: dy); and the per-slice partial weight gradients.
constexpr std::size_t kThreadSlot = 0;
constexpr std::size_t kPartialSlot = 1;

// The weight gradient is summed in this many slices of the batch at most, each by one thread,
// then the slices in order: a fixed partition, so dW does not depend on the thread count.
constexpr index_t kMaxSlices = 8;

// Below this many elements a parallel region costs more than it saves.
constexpr index_t kParallelMin = 1 << 14;

// The outputs o in [lo, hi) whose tap t reads inside the image, i.e. 0 <= conv_in_coord(o, t) <
// in. Along the width this turns the per-element bounds test into one clipped contiguous range.
struct Span {
  index_t lo, hi;
};

Span reading_span(index_t t, index_t s, index_t p, index_t d, index_t in, index_t out) {
  const index_t base = conv_in_coord(0, t, s, p, d);
  const index_t lo = base >= 0 ? 0 : ceil_div(-base, s);
  const index_t last = in - 1 - base;
  const index_t hi = last < 0 ? 0 : min_i(out, last / s + 1);
  return {min_i(lo, hi), hi};
}

// col (c*kh*kw rows, nb*oh*ow columns; sample j's columns start at j*oh*ow) from the nb samples
// at x. Runs on one thread: the caller parallelises over groups of samples.
template <typename T>
void im2col(T* col, const T* x, const Conv2dShape& s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane, rows = s.col_rows();
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

// Gather-form col2im: dx for the nb samples at dx from the column gradient. Each input element
// (ih, iw) is the sum, in ascending (ki, kj) order, of the one column entry per tap that read it:
// the row via conv_out_coord, the column by walking the tap's reading span (the inverse map within
// the row). Every element has one writer and a fixed order: no races, and deterministic. Runs on
// one thread: the caller parallelises over groups of samples.
template <typename T>
void col2im(T* dx, const T* col, const Conv2dShape& s, index_t nb) {
  const index_t plane = s.out_plane(), ld = nb * plane;
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

// Rows of a GEMM-layout matrix (k rows of `cols`) start as the bias.
template <typename T>
void fill_bias(T* m, const T* bias, index_t k, index_t cols) {
  for (index_t kk = 0; kk < k; ++kk) {
    T* row = m + kk * cols;
    for (index_t p = 0; p < cols; ++p) row[p] = bias[kk];
  }
}

// A group's GEMM layout (k rows, nb*plane columns) <-> NCHW (nb, k, plane).
template <typename T>
void gemm_to_nchw(T* y, const T* m, index_t nb, index_t k, index_t plane) {
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
  for (index_t j = 0; j < nb; ++j) {
    for (index_t kk = 0; kk < k; ++kk) {
      const T* src = y + (j * k + kk) * plane;
      T* dst = m + kk * nb * plane + j * plane;
      for (index_t p = 0; p < plane; ++p) dst[p] = src[p];
    }
  }
}

// ReLU in place: x < 0 -> 0, NaN passes (the same rule as relu_forward).
template <typename T>
void clamp_negative(T* v, index_t count) {
  for (index_t i = 0; i < count; ++i) v[i] = v[i] < T(0) ? T(0) : v[i];
}

// A group's dy in GEMM layout, through the ReLU's gradient mask when relu_y is given (zero where
// the forward output was not > 0): one pass, while the group is in cache.
template <typename T>
void dy_to_gemm(T* m, const T* dy, const T* relu_y, index_t nb, index_t k, index_t plane) {
  if (!relu_y) return nchw_to_gemm(m, dy, nb, k, plane);
  for (index_t j = 0; j < nb; ++j) {
    for (index_t kk = 0; kk < k; ++kk) {
      const T* src = dy + (j * k + kk) * plane;
      const T* yr = relu_y + (j * k + kk) * plane;
      T* dst = m + kk * nb * plane + j * plane;
      for (index_t p = 0; p < plane; ++p) dst[p] = keep_if_positive(yr[p], src[p]);
    }
  }
}

// Bias gradients sum n*oh*ow terms in double, in kLanes interleaved partial sums (so the adds
// can overlap and vectorise) that are combined in a fixed order: deterministic on any thread
// count. With `mask`, a term counts only where the fused ReLU's output was > 0.
constexpr index_t kLanes = 8;

template <typename T>
void add_lanes(double* acc, const T* v, const T* mask, index_t count) {
  index_t p = 0;
  if (mask) {
    for (; p + kLanes <= count; p += kLanes)
      for (index_t l = 0; l < kLanes; ++l)
        acc[l] += static_cast<double>(keep_if_positive(mask[p + l], v[p + l]));
    for (; p < count; ++p) acc[p % kLanes] += static_cast<double>(keep_if_positive(mask[p], v[p]));
  } else {
    for (; p + kLanes <= count; p += kLanes)
      for (index_t l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(v[p + l]);
    for (; p < count; ++p) acc[p % kLanes] += static_cast<double>(v[p]);
  }
}

inline double combine_lanes(const double* acc) {
  double total = 0.0;
  for (index_t l = 0; l < kLanes; ++l) total += acc[l];
  return total;
}

// Samples per GEMM: enough for about kGroupColumns GEMM columns, so that small planes (late
// layers: 7x7 = 49 columns a sample) still make GEMMs OpenBLAS runs efficiently. It depends on the
// shape alone: OpenBLAS computes a GEMM's last columns with other kernels, so a sample's result
// depends (in the last bits) on where it sits in its GEMM, and fixed groups keep results
// independent of everything but the shape.
index_t conv2d_group(const Conv2dShape& s) {
  constexpr index_t kGroupColumns = 512;
  return min_i(s.n, (kGroupColumns + s.out_plane() - 1) / s.out_plane());
}

index_t group_count(const Conv2dShape& s) {
  const index_t g = conv2d_group(s);
  return (s.n + g - 1) / g;
}

index_t slice_count(const Conv2dShape& s) { return min_i(kMaxSlices, group_count(s)); }

// The GEMMs' dimensions (k, c*kh*kw, a group's columns) within the 32-bit BLAS, checked on the
// calling thread before any region. A group's columns are at most max(oh*ow, 1023), so the plane
// is what to check (in unsigned arithmetic: oh*ow itself may not fit in 64 bits).
void check_conv_blas_dims(const Conv2dShape& s) {
  check_blas_dim(s.k, "w.shape[0] (output channels)");
  check_blas_dim(s.col_rows(), "w.shape[1]*w.shape[2]*w.shape[3] (c*kh*kw)");
  std::uint64_t plane;
  if (!try_mul(static_cast<std::uint64_t>(s.oh), static_cast<std::uint64_t>(s.ow),
                             &plane) ||
      plane > static_cast<std::uint64_t>(kBlasMaxDim))
    throw std::invalid_argument(text::cat(
        "the output plane oh*ow must be at most ", kBlasMaxDim,
        " (the 32-bit BLAS limit); got ", s.oh, "*", s.ow, " from x.shape[2:] and the geometry"));
}

// One thread's scratch in elements: a group's columns, then (where `with_mat`) its GEMM-layout
// matrix (used when the group has > 1 sample, or for a ReLU-masked dy).
struct ThreadScratch {
  std::size_t col, mat;
};

ThreadScratch thread_scratch(const Conv2dShape& s, bool with_mat, const SizeCalc& size) {
  const std::size_t cols = size.count(conv2d_group(s) * s.out_plane());
  return {size.mul(size.count(s.col_rows()), cols), with_mat ? size.mul(size.count(s.k), cols) : 0};
}

// db: one sum per output channel over (n, oh, ow) in double (a float sum of n*oh*ow terms would
// lose digits), in fixed lanes; parallel over channels only. The same for every algorithm.
template <typename T>
void bias_grad(T* db, const T* dy, const T* relu_y, const Conv2dShape& s) {
  const index_t plane = s.out_plane();
#pragma omp parallel for schedule(static) num_threads(team(s.k))
  for (index_t kk = 0; kk < s.k; ++kk) {
    double acc[kLanes] = {};
    for (index_t n = 0; n < s.n; ++n) {
      const index_t at = (n * s.k + kk) * plane;
      if (relu_y)
        add_lanes(acc, dy + at, relu_y + at, plane);
      else
        add_lanes(acc, dy + at, static_cast<const T*>(nullptr), plane);
    }
    db[kk] = static_cast<T>(combine_lanes(acc));
  }
}

}  // namespace

std::size_t conv2d_scratch_bytes(const Conv2dShape& s, std::size_t elem_bytes) {
  if (const int m = winograd_tile(s, elem_bytes)) return winograd_scratch_bytes(m, s);
  check_conv_blas_dims(s);
  const SizeCalc size{"conv2d_scratch_bytes", "conv2d scratch"};
  const ThreadScratch per = thread_scratch(s, true, size);
  const std::size_t threads = size.count(team(group_count(s)));
  const std::size_t partials =
      size.mul(size.count(slice_count(s)), size.mul(size.count(s.k), size.count(s.col_rows())));
  return size.mul(size.add(size.mul(threads, size.add(per.col, per.mat)), partials), elem_bytes);
}

// Groups of samples run in parallel, one thread each, with (single-threaded) GEMMs: a group's
// columns (c*kh*kw x nb*oh*ow) stay in that core's cache between im2col and the GEMM, and a
// sample's result is the same whichever thread computes it. Per group y_g (k x nb*oh*ow) =
// W (k x c*kh*kw) * col_g, with the bias folded in as the GEMM's initial value (beta = 1). A
// one-sample group's GEMM layout already is NCHW, so it writes y directly. With `relu` the
// result is clamped at 0 while the group is still in cache, saving the activation a pass.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s, bool relu) {
  if constexpr (std::is_same_v<T, float>) {
    if (const int m = winograd_tile(s, sizeof(T))) return winograd_forward(m, y, x, w, b, s, relu);
  }
  check_conv_blas_dims(s);
  const index_t plane = s.out_plane(), rows = s.col_rows(), group = conv2d_group(s);
  const index_t groups = group_count(s), in_sample = s.c * s.h * s.w, out_sample = s.k * plane;
  const int threads = team(groups);
  const SizeCalc size{"conv2d_forward", "im2col scratch"};
  const ThreadScratch per = thread_scratch(s, group > 1, size);
  const ThreadSlots<T> slots(kThreadSlot, threads, size.add(per.col, per.mat), size);
#pragma omp parallel num_threads(threads)
  {
    T* col = slots.mine();
    T* mat = col + per.col;
    // Static: the groups are equal work, and each thread then writes the same part of y call
    // after call, so its lines stay in that core's cache (schedule(dynamic) handed groups to
    // either thread: conv1 forward, repeated, ran 2.5x slower on 2 threads than this).
#pragma omp for schedule(static)
    for (index_t g = 0; g < groups; ++g) {
      const index_t n0 = g * group, nb = min_i(group, s.n - n0), cols = nb * plane;
      T* yg = y + n0 * out_sample;
      T* dst = nb == 1 ? yg : mat;
      im2col(col, x + n0 * in_sample, s, nb);
      if (b) fill_bias(dst, b, s.k, cols);
      gemm(false, false, s.k, cols, rows, T(1), w, rows, col, cols, b ? T(1) : T(0), dst, cols);
      if (relu) clamp_negative(dst, s.k * cols);
      if (nb > 1) gemm_to_nchw(yg, mat, nb, s.k, plane);
    }
  }
}

// db: bias_grad. dW: the groups fall into at most kMaxSlices fixed slices of the batch; one
// thread sums a slice (dW_s += dy_g * col_g^T, group after group), then the slices are added in
// order. dX: per group dcol_g = W^T * dy_g, written over col_g (its last use was the dW GEMM),
// then a gather col2im. With relu_y (the output of a forward with relu), dy first passes the
// ReLU's gradient mask (dy where relu_y > 0), group by group in cache, instead of in a separate
// pass. float32 3x3 stride-1 shapes may go to Winograd instead (winograd_tile), which sums db
// from the dy rows its dW pass reads anyway.
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* x, const T* w, const T* dy, const T* relu_y,
                     const Conv2dShape& s) {
  if constexpr (std::is_same_v<T, float>) {
    if (const int m = winograd_tile(s, sizeof(T)))
      return winograd_backward(m, dx, dw, db, x, w, dy, relu_y, s);
  }
  if (db) bias_grad(db, dy, relu_y, s);
  check_conv_blas_dims(s);
  const index_t plane = s.out_plane(), rows = s.col_rows(), group = conv2d_group(s);
  const index_t groups = group_count(s), slices = slice_count(s);
  const index_t in_sample = s.c * s.h * s.w, out_sample = s.k * plane, wsize = s.k * rows;
  const int threads = team(slices);
  const SizeCalc size{"conv2d_backward", "im2col scratch"};
  const ThreadScratch per = thread_scratch(s, group > 1 || relu_y, size);
  const ThreadSlots<T> slots(kThreadSlot, threads, size.add(per.col, per.mat), size);
  T* partial = dw;  // one slice sums straight into dW
  if (slices > 1) {
    const SizeCalc psize{"conv2d_backward", "partial weight gradients"};
    partial = scratch<T>(kPartialSlot, psize.mul(psize.count(slices), psize.count(wsize)), psize);
  }
  {
#pragma omp parallel num_threads(threads)
    {
      T* col = slots.mine();
      T* mat = col + per.col;
#pragma omp for schedule(static)
      for (index_t sl = 0; sl < slices; ++sl) {
        T* dw_slice = partial + sl * wsize;
        for (index_t g = sl * groups / slices; g < (sl + 1) * groups / slices; ++g) {
          const index_t n0 = g * group, nb = min_i(group, s.n - n0), cols = nb * plane;
          const T* dyg = dy + n0 * out_sample;
          if (nb > 1 || relu_y) {
            dy_to_gemm(mat, dyg, relu_y ? relu_y + n0 * out_sample : nullptr, nb, s.k, plane);
            dyg = mat;
          }
          im2col(col, x + n0 * in_sample, s, nb);
          gemm(false, true, s.k, rows, cols, T(1), dyg, cols, col, cols,
               g == sl * groups / slices ? T(0) : T(1), dw_slice, rows);
          if (dx) {
            gemm(true, false, rows, cols, s.k, T(1), w, rows, dyg, cols, T(0), col, cols);
            col2im(dx + n0 * in_sample, col, s, nb);
          }
        }
      }
    }
  }
  if (slices > 1) {
#pragma omp parallel for schedule(static) num_threads(team(wsize)) if (wsize > kParallelMin)
    for (index_t e = 0; e < wsize; ++e) {
      T acc = partial[e];
      for (index_t sl = 1; sl < slices; ++sl) acc += partial[sl * wsize + e];
      dw[e] = acc;
    }
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&, bool);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&, bool);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const float*, const Conv2dShape&);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const double*, const Conv2dShape&);

}  // namespace fastconv::cpu
