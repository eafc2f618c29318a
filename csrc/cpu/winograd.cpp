#include "cpu/winograd.h"

#include <cstdint>

#include "cpu/blas.h"
#include "cpu/threads.h"
#include "cpu/winograd_transforms.h"
#include "cpu/workspace.h"
#include "fastconv/checked.h"

namespace fastconv::cpu {
namespace {

using wino::kLanes;
using wino::transform_2d;

// Scratch slots (cpu/workspace.h): per thread, a block's transformed input and products; the
// weight gradient's per-slice partial sums (in the product domain); the transformed filter.
constexpr std::size_t kThreadSlot = 0;
constexpr std::size_t kPartialSlot = 1;
constexpr std::size_t kFilterSlot = 2;

// As in the im2col path: dW is summed in at most this many fixed slices of the tiles.
constexpr index_t kMaxSlices = 8;

// A block's transformed input and products together take about this many bytes: they stay in a
// core's L2 from the input transform through the GEMMs to the output transform. (Measured on the
// benchmark shapes: 256 KiB to 1 MiB are within noise of each other; much smaller blocks make
// GEMMs too thin for OpenBLAS's kernels.)
constexpr std::uint64_t kBlockBytes = 512 * 1024;
constexpr index_t kMinBlock = 4 * kLanes, kMaxBlock = 64 * kLanes;

// One Winograd correlation out[o] = sum_t in[o - p + t] * f[t] (per axis), reading zeros outside
// `in`: the tiles cover out's plane.
struct Plan {
  int m, a;
  index_t n, cin, ih, iw, cout, oh, ow, ph, pw;
  index_t tw, per_sample, tiles, block, blocks;
  std::size_t v, prod;  // elements of a block's transformed input and products (a*a*c*block)
};

Plan make_plan(int m, index_t n, index_t cin, index_t ih, index_t iw, index_t cout, index_t oh,
               index_t ow, index_t ph, index_t pw, const SizeCalc& size) {
  Plan p{m, m + 2, n, cin, ih, iw, cout, oh, ow, ph, pw, 0, 0, 0, 0, 0, 0, 0};
  const index_t th = ceil_div(oh, m);
  p.tw = ceil_div(ow, m);
  p.per_sample = th * p.tw;  // at most oh*ow: cannot overflow
  p.tiles = n * p.per_sample;  // at most the output's elements, below 2**60
  // Bytes per tile of a block, in double: c + k can be near 2**62.
  const double per_tile = double(p.a) * p.a * (double(cin) + double(cout)) * sizeof(float);
  const double fit = double(kBlockBytes) / per_tile;
  index_t block = fit >= double(kMaxBlock) ? kMaxBlock : static_cast<index_t>(fit);
  block = max_i(kMinBlock, block / kLanes * kLanes);
  p.block = min_i(block, ceil_div(p.tiles, kLanes) * kLanes);
  p.blocks = ceil_div(p.tiles, p.block);
  const std::size_t sq = size.count(index_t{p.a} * p.a), b = size.count(p.block);
  p.v = size.mul(size.mul(sq, size.count(cin)), b);
  p.prod = size.mul(size.mul(sq, size.count(cout)), b);
  return p;
}

// The forward's plan: tiles over y's plane, reading x padded by p.
Plan forward_plan(int m, const Conv2dShape& s, const SizeCalc& size) {
  return make_plan(m, s.n, s.c, s.h, s.w, s.k, s.oh, s.ow, s.ph, s.pw, size);
}

// dx's plan: tiles over x's plane, reading dy padded by 2 - p (negative: cropped).
Plan data_grad_plan(int m, const Conv2dShape& s, const SizeCalc& size) {
  return make_plan(m, s.n, s.k, s.oh, s.ow, s.c, s.h, s.w, 2 - s.ph, 2 - s.pw, size);
}

index_t slice_count(const Plan& p) { return min_i(kMaxSlices, p.blocks); }

// Where kLanes consecutive tiles starting at t0 sit: the sample's offset in planes, and the
// first input row and column each reads. Lanes past `count` are marked empty (sample -1).
struct LaneTiles {
  index_t sample[kLanes], row[kLanes], col[kLanes];
};

LaneTiles locate(const Plan& p, index_t t0, index_t count) {
  LaneTiles lt;
  for (int l = 0; l < kLanes; ++l) {
    const index_t t = t0 + l, r = t % p.per_sample;
    lt.sample[l] = l < count ? t / p.per_sample : -1;
    lt.row[l] = (r / p.tw) * p.m;
    lt.col[l] = (r % p.tw) * p.m;
  }
  return lt;
}

inline float masked(const float* v, const float* mask, index_t i) {
  return mask && !(mask[i] > 0.0f) ? 0.0f : v[i];  // a fused ReLU's gradient mask
}

// patch (rows x cols values of kLanes lanes) = each lane's plane (h x w) from (r0, c0), zero
// outside the plane and in empty lanes.
void gather(float* patch, int rows, int cols, const float* const* planes, const float* const* masks,
            const index_t* r0, const index_t* c0, index_t h, index_t w) {
  for (int l = 0; l < kLanes; ++l) {
    const float* src = planes[l];
    const float* mask = masks[l];
    const bool inside = src && r0[l] >= 0 && c0[l] >= 0 && r0[l] + rows <= h && c0[l] + cols <= w;
    for (int i = 0; i < rows; ++i) {
      const index_t r = r0[l] + i;
      for (int j = 0; j < cols; ++j) {
        const index_t c = c0[l] + j;
        float v = 0.0f;
        if (inside || (src && r >= 0 && r < h && c >= 0 && c < w))
          v = masked(src, mask, r * w + c);
        patch[(i * cols + j) * kLanes + l] = v;
      }
    }
  }
}

// V (a*a rows of cin x ld) for the tiles [t0, t0 + count) of a block: B^T d B per tile and
// input channel, from `in` (through `mask` where given).
template <int M>
void input_block(float* V, const Plan& p, const float* in, const float* mask, index_t t0,
                 index_t count) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.ih * p.iw, ld = p.block;
  float d[A * A * kLanes], v[A * A * kLanes];
  for (index_t g = 0; g < count; g += kLanes) {
    const LaneTiles lt = locate(p, t0 + g, count - g);
    index_t r0[kLanes], c0[kLanes];
    for (int l = 0; l < kLanes; ++l) r0[l] = lt.row[l] - p.ph, c0[l] = lt.col[l] - p.pw;
    for (index_t c = 0; c < p.cin; ++c) {
      const float* planes[kLanes];
      const float* masks[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        const index_t at = (lt.sample[l] * p.cin + c) * plane;
        planes[l] = lt.sample[l] < 0 ? nullptr : in + at;
        masks[l] = lt.sample[l] < 0 || !mask ? nullptr : mask + at;
      }
      gather(d, A, A, planes, masks, r0, c0, p.ih, p.iw);
      transform_2d<kLanes, A, A>(d, v, [](const float* i, std::ptrdiff_t is, float* o,
                                         std::ptrdiff_t os) { Var::template input<kLanes>(i, is, o, os); });
      for (int xi = 0; xi < A * A; ++xi) {
        float* dst = V + (xi * p.cin + c) * ld + g;
        for (int l = 0; l < kLanes; ++l) dst[l] = v[xi * kLanes + l];
      }
    }
  }
}

// The outputs of tiles [t0, t0 + count) from their products P (a*a rows of cout x ld): A^T P A,
// plus the bias, clamped at 0 with `relu`; the parts of edge tiles past the plane are dropped.
template <int M>
void output_block(float* out, const Plan& p, const float* P, const float* bias, bool relu,
                  index_t t0, index_t count) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.oh * p.ow, ld = p.block;
  float mm[A * A * kLanes], y[M * M * kLanes];
  for (index_t g = 0; g < count; g += kLanes) {
    const LaneTiles lt = locate(p, t0 + g, count - g);
    for (index_t k = 0; k < p.cout; ++k) {
      for (int xi = 0; xi < A * A; ++xi) {
        const float* src = P + (xi * p.cout + k) * ld + g;
        for (int l = 0; l < kLanes; ++l) mm[xi * kLanes + l] = src[l];
      }
      transform_2d<kLanes, A, M>(mm, y, [](const float* i, std::ptrdiff_t is, float* o,
                                           std::ptrdiff_t os) { Var::template output<kLanes>(i, is, o, os); });
      const float b = bias ? bias[k] : 0.0f;
      for (int l = 0; l < kLanes && lt.sample[l] >= 0; ++l) {
        float* dst = out + (lt.sample[l] * p.cout + k) * plane;
        const int rows = static_cast<int>(min_i(M, p.oh - lt.row[l]));
        const int cols = static_cast<int>(min_i(M, p.ow - lt.col[l]));
        for (int i = 0; i < rows; ++i) {
          for (int j = 0; j < cols; ++j) {
            float v = y[(i * M + j) * kLanes + l];
            if (bias) v += b;
            if (relu) v = v < 0.0f ? 0.0f : v;
            dst[(lt.row[l] + i) * p.ow + lt.col[l] + j] = v;
          }
        }
      }
    }
  }
}

// D (a*a rows of cout x ld): A dy A^T for the tiles [t0, t0 + count) and each output channel,
// dy zero past the plane (those outputs do not exist), through the ReLU mask where given.
template <int M>
void output_grad_block(float* D, const Plan& p, const float* dy, const float* mask, index_t t0,
                       index_t count) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
  const index_t plane = p.oh * p.ow, ld = p.block;
  float d[M * M * kLanes], u[A * A * kLanes];
  for (index_t g = 0; g < count; g += kLanes) {
    const LaneTiles lt = locate(p, t0 + g, count - g);
    for (index_t k = 0; k < p.cout; ++k) {
      const float* planes[kLanes];
      const float* masks[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        const index_t at = (lt.sample[l] * p.cout + k) * plane;
        planes[l] = lt.sample[l] < 0 ? nullptr : dy + at;
        masks[l] = lt.sample[l] < 0 || !mask ? nullptr : mask + at;
      }
      gather(d, M, M, planes, masks, lt.row, lt.col, p.oh, p.ow);
      transform_2d<kLanes, M, A>(d, u, [](const float* i, std::ptrdiff_t is, float* o,
                                          std::ptrdiff_t os) { Var::template output_adjoint<kLanes>(i, is, o, os); });
      for (int xi = 0; xi < A * A; ++xi) {
        float* dst = D + (xi * p.cout + k) * ld + g;
        for (int l = 0; l < kLanes; ++l) dst[l] = u[xi * kLanes + l];
      }
    }
  }
}

// U (a*a rows of rows x cols): G g G^T of each 3x3 filter, in double. Filter (r, q) is
// w[r][q] for the forward; with `flip`, w[q][r] turned by 180 degrees (the data gradient's).
template <int M>
void transform_filters(float* U, const float* w, index_t rows, index_t cols, bool flip) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
#pragma omp parallel for schedule(static) num_threads(team(rows)) if (rows * cols > 4096)
  for (index_t r = 0; r < rows; ++r) {
    double g[9], u[A * A];
    for (index_t q = 0; q < cols; ++q) {
      const float* f = flip ? w + (q * rows + r) * 9 : w + (r * cols + q) * 9;
      for (int e = 0; e < 9; ++e) g[e] = f[flip ? 8 - e : e];
      transform_2d<1, 3, A>(g, u, [](const double* i, std::ptrdiff_t is, double* o,
                                     std::ptrdiff_t os) { Var::template filter<1>(i, is, o, os); });
      for (int xi = 0; xi < A * A; ++xi) U[(xi * rows + r) * cols + q] = static_cast<float>(u[xi]);
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
  const ThreadSlots<float> slots(kThreadSlot, threads, size.add(p.v, p.prod), size);
#pragma omp parallel num_threads(threads)
  {
    float* V = slots.mine();
    float* P = V + p.v;
#pragma omp for schedule(dynamic, 1)
    for (index_t blk = 0; blk < p.blocks; ++blk) {
      const index_t t0 = blk * p.block, count = min_i(p.block, p.tiles - t0);
      input_block<M>(V, p, in, mask, t0, count);
      for (int xi = 0; xi < A * A; ++xi)
        gemm(false, false, p.cout, count, p.cin, 1.0f, U + xi * p.cout * p.cin, p.cin,
             V + xi * p.cin * p.block, p.block, 0.0f, P + xi * p.cout * p.block, p.block);
      output_block<M>(out, p, P, bias, relu, t0, count);
    }
  }
}

template <int M>
void forward(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
             bool relu) {
  constexpr int A = M + 2;
  check_dims(s);
  const SizeCalc size{"conv2d_forward", "Winograd scratch"};
  const Plan p = forward_plan(M, s, size);
  float* U = scratch<float>(kFilterSlot, size.mul(A * A, size.mul(size.count(s.k), size.count(s.c))),
                            size);
  transform_filters<M>(U, w, s.k, s.c, false);
  correlate<M>(p, y, x, nullptr, U, b, relu, "conv2d_forward");
}

// dW: every slice of blocks sums A dy A^T times (B^T x B)^T over its tiles into its own product
// domain partial (k x c per xi); the slices are added in order, then G^T . G takes the sum back
// to 3x3 filters (in double).
template <int M>
void weight_grad(float* dw, const float* x, const float* dy, const float* relu_y,
                 const Conv2dShape& s) {
  using Var = wino::Variant<M>;
  constexpr int A = Var::kA;
  const SizeCalc size{"conv2d_backward", "Winograd scratch"};
  const Plan p = forward_plan(M, s, size);
  const index_t slices = slice_count(p), usize = A * A * s.k * s.c;
  const int threads = team(slices);
  const ThreadSlots<float> slots(kThreadSlot, threads, size.add(p.v, p.prod), size);
  float* partial = scratch<float>(
      kPartialSlot, size.mul(size.count(slices), size.count(usize)), size);
#pragma omp parallel num_threads(threads)
  {
    float* V = slots.mine();
    float* D = V + p.v;
#pragma omp for schedule(dynamic, 1)
    for (index_t sl = 0; sl < slices; ++sl) {
      float* dU = partial + sl * usize;
      const index_t first = sl * p.blocks / slices, last = (sl + 1) * p.blocks / slices;
      for (index_t blk = first; blk < last; ++blk) {
        const index_t t0 = blk * p.block, count = min_i(p.block, p.tiles - t0);
        input_block<M>(V, p, x, nullptr, t0, count);
        output_grad_block<M>(D, p, dy, relu_y, t0, count);
        for (int xi = 0; xi < A * A; ++xi)
          gemm(false, true, s.k, s.c, count, 1.0f, D + xi * s.k * p.block, p.block,
               V + xi * s.c * p.block, p.block, blk == first ? 0.0f : 1.0f,
               dU + xi * s.k * s.c, s.c);
      }
    }
  }
  const index_t pairs = s.k * s.c;
#pragma omp parallel for schedule(static) num_threads(team(pairs)) if (pairs > 1024)
  for (index_t e = 0; e < pairs; ++e) {
    double u[A * A], g[9];
    for (int xi = 0; xi < A * A; ++xi) {
      float acc = partial[xi * pairs + e];
      for (index_t sl = 1; sl < slices; ++sl) acc += partial[sl * usize + xi * pairs + e];
      u[xi] = acc;
    }
    transform_2d<1, A, 3>(u, g, [](const double* i, std::ptrdiff_t is, double* o,
                                   std::ptrdiff_t os) { Var::template filter_adjoint<1>(i, is, o, os); });
    for (int t = 0; t < 9; ++t) dw[e * 9 + t] = static_cast<float>(g[t]);
  }
}

// dx: the correlation of dy (through the ReLU mask) with the flipped, channel-swapped filters.
template <int M>
void backward(float* dx, float* dw, const float* x, const float* w, const float* dy,
              const float* relu_y, const Conv2dShape& s) {
  constexpr int A = M + 2;
  check_dims(s);
  if (dx) {
    const SizeCalc size{"conv2d_backward", "Winograd scratch"};
    const Plan p = data_grad_plan(M, s, size);
    float* U = scratch<float>(
        kFilterSlot, size.mul(A * A, size.mul(size.count(s.k), size.count(s.c))), size);
    transform_filters<M>(U, w, s.c, s.k, true);
    correlate<M>(p, dx, dy, relu_y, U, nullptr, false, "conv2d_backward");
  }
  weight_grad<M>(dw, x, dy, relu_y, s);
}

}  // namespace

bool winograd_applies(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1;
}

void winograd_forward(int m, float* y, const float* x, const float* w, const float* b,
                      const Conv2dShape& s, bool relu) {
  if (m == 2)
    forward<2>(y, x, w, b, s, relu);
  else
    forward<4>(y, x, w, b, s, relu);
}

void winograd_backward(int m, float* dx, float* dw, const float* x, const float* w,
                       const float* dy, const float* relu_y, const Conv2dShape& s) {
  if (m == 2)
    backward<2>(dx, dw, x, w, dy, relu_y, s);
  else
    backward<4>(dx, dw, x, w, dy, relu_y, s);
}

// What the calls reserve together: the forward its per-thread blocks and the filters; the
// backward the larger of its two passes' per-thread blocks, the filters and the slices' partial
// sums. The larger of the two totals.
std::size_t winograd_scratch_bytes(int m, const Conv2dShape& s) {
  check_dims(s);
  const SizeCalc size{"conv2d_scratch_bytes", "Winograd scratch"};
  const index_t a = m + 2;
  const std::size_t filters =
      size.mul(size.count(a * a), size.mul(size.count(s.k), size.count(s.c)));
  auto threads_of = [&](const Plan& p, index_t work) {
    const std::size_t per = size.add(p.v, p.prod), line = 64 / sizeof(float);
    const std::size_t stride = size.mul(size.add(per, line - 1) / line, line);  // as ThreadSlots
    return size.mul(stride, size.count(team(work)));
  };
  const Plan fwd = forward_plan(m, s, size), dxp = data_grad_plan(m, s, size);
  const std::size_t forward = size.add(threads_of(fwd, fwd.blocks), filters);
  const std::size_t dw_pass = threads_of(fwd, slice_count(fwd));
  const std::size_t dx_pass = threads_of(dxp, dxp.blocks);
  const std::size_t backward = size.add(
      size.add(dw_pass > dx_pass ? dw_pass : dx_pass, filters),
      size.mul(size.count(slice_count(fwd)), filters));
  return size.mul(forward > backward ? forward : backward, sizeof(float));
}

}  // namespace fastconv::cpu
