// conv2d's GEMM-layout passes (conv_layout.h): NCHW <-> the GEMMs' (k, nb*plane) layout, with
// the forward's bias and ReLU and the backward's ReLU mask and bias-gradient partial sums. As in
// conv_layout.cu, every division is by a launch-time divisor (fastdiv.h), in int32 where the
// sizes fit; consecutive threads touch consecutive addresses on the side they write.
#include "cuda/channel_sum.h"
#include "cuda/context.h"
#include "cuda/conv_layout.h"
#include "cuda/kernels_common.cuh"

namespace fastconv::cuda {
namespace {

// e runs over y in NCHW order: e = (j*k + kk)*plane + p.
template <class Div>
__global__ void gemm_to_nchw_kernel(float* y, const float* m, const float* bias,
                                    typename Div::Int nb, typename Div::Int count, bool relu,
                                    Div by_plane, Div by_k) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, j, kk;
    by_plane.divmod(e, &row, &p);
    by_k.divmod(row, &j, &kk);
    float v = m[(kk * nb + j) * plane + p];
    if (bias) v = __fadd_rn(v, __ldg(bias + kk));
    y[e] = relu && v < 0.0f ? 0.0f : v;
  }
}

// e runs over m in GEMM order: e = (kk*nb + j)*plane + p.
template <class Div>
__global__ void nchw_to_gemm_kernel(float* m, const float* dy, const float* relu_y,
                                    typename Div::Int k, typename Div::Int count, Div by_plane,
                                    Div by_nb) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, kk, j;
    by_plane.divmod(e, &row, &p);
    by_nb.divmod(row, &kk, &j);
    const I src = (j * k + kk) * plane + p;
    const float v = dy[src];
    m[e] = relu_y ? (relu_y[src] > 0.0f ? v : 0.0f) : v;
  }
}

// The two layout passes 4 floats at a time (plane % 4 == 0 and 16-byte aligned arrays, which
// launch_* checks): one 16-byte load and store per thread instead of four 4-byte ones, so four
// times the bytes in flight per thread. Element for element the same operations, so the same
// bits as the scalar kernels. Indices count float4s; by_plane divides by plane / 4.
__device__ __forceinline__ float4 clamp4(float4 v) {
  v.x = v.x < 0.0f ? 0.0f : v.x;
  v.y = v.y < 0.0f ? 0.0f : v.y;
  v.z = v.z < 0.0f ? 0.0f : v.z;
  v.w = v.w < 0.0f ? 0.0f : v.w;
  return v;
}

template <class Div>
__global__ void gemm_to_nchw4_kernel(float4* y, const float4* m, const float* bias,
                                     typename Div::Int nb, typename Div::Int count, bool relu,
                                     Div by_plane, Div by_k) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, j, kk;
    by_plane.divmod(e, &row, &p);
    by_k.divmod(row, &j, &kk);
    float4 v = m[(kk * nb + j) * plane + p];
    if (bias) {
      const float b = __ldg(bias + kk);
      v.x = __fadd_rn(v.x, b);
      v.y = __fadd_rn(v.y, b);
      v.z = __fadd_rn(v.z, b);
      v.w = __fadd_rn(v.w, b);
    }
    y[e] = relu ? clamp4(v) : v;
  }
}

template <class Div>
__global__ void nchw_to_gemm4_kernel(float4* m, const float4* dy, const float4* relu_y,
                                     typename Div::Int k, typename Div::Int count, Div by_plane,
                                     Div by_nb) {
  using I = typename Div::Int;
  const I plane = I(by_plane.d);
  FC_GRID_LOOP_AS(I, e, count) {
    I row, p, kk, j;
    by_plane.divmod(e, &row, &p);
    by_nb.divmod(row, &kk, &j);
    const I src = (j * k + kk) * plane + p;
    float4 v = __ldg(dy + src);
    if (relu_y) {
      const float4 r = __ldg(relu_y + src);
      v.x = r.x > 0.0f ? v.x : 0.0f;
      v.y = r.y > 0.0f ? v.y : 0.0f;
      v.z = r.z > 0.0f ? v.z : 0.0f;
      v.w = r.w > 0.0f ? v.w : 0.0f;
    }
    m[e] = v;
  }
}

// Block b = (channel kk, chunk part), b = kk * parts + part: the chunk's elements q of row kk of
// m (q = j*plane + p) are transformed as in nchw_to_gemm_kernel and summed as in
// channel_sum.cu's channel_partial_kernel (ascending q per thread, then the block's tree).
template <class Div>
__global__ void nchw_to_gemm_sum_kernel(float* m, double* partial, index_t stride, index_t base,
                                        const float* dy, const float* relu_y,
                                        typename Div::Int k, typename Div::Int ld, index_t parts,
                                        Div by_plane) {
  using I = typename Div::Int;
  __shared__ double buf[kReduceBlock];
  const I plane = I(by_plane.d);
  const I kk = I(blockIdx.x / parts), part = I(blockIdx.x % parts);  // once a block
  const I first = part * I(kSumChunk);
  const I end = ld - first < I(kSumChunk) ? ld : first + I(kSumChunk);
  float* row = m + kk * ld;
  double acc = 0.0;
#pragma unroll 4
  for (I q = first + I(threadIdx.x); q < end; q += I(kReduceBlock)) {
    I j, p;
    by_plane.divmod(q, &j, &p);
    const I src = (j * k + kk) * plane + p;
    float v = __ldg(dy + src);
    if (relu_y && !(__ldg(relu_y + src) > 0.0f)) v = 0.0f;
    row[q] = v;
    acc += static_cast<double>(v);
  }
  const double total = block_sum(acc, buf);
  if (threadIdx.x == 0) partial[index_t(kk) * stride + base + part] = total;
}

template <class Div>
void launch_gemm_to_nchw(float* y, const float* m, const float* bias, index_t nb, index_t k,
                         index_t plane, bool relu) {
  using I = typename Div::Int;
  const index_t count = nb * k * plane;
  if (vec4_ok(plane, {y, m})) {
    gemm_to_nchw4_kernel<<<blocks_for(count / 4), kBlock, 0, stream()>>>(
        reinterpret_cast<float4*>(y), reinterpret_cast<const float4*>(m), bias, I(nb),
        I(count / 4), relu, Div(plane / 4), Div(k));
  } else {
    gemm_to_nchw_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, m, bias, I(nb), I(count),
                                                                    relu, Div(plane), Div(k));
  }
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                         index_t plane) {
  using I = typename Div::Int;
  const index_t count = nb * k * plane;
  if (vec4_ok(plane, {m, dy, relu_y})) {
    nchw_to_gemm4_kernel<<<blocks_for(count / 4), kBlock, 0, stream()>>>(
        reinterpret_cast<float4*>(m), reinterpret_cast<const float4*>(dy),
        reinterpret_cast<const float4*>(relu_y), I(k), I(count / 4), Div(plane / 4), Div(nb));
  } else {
    nchw_to_gemm_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(m, dy, relu_y, I(k),
                                                                    I(count), Div(plane),
                                                                    Div(nb));
  }
  FC_LAUNCH_CHECK();
}

template <class Div>
void launch_nchw_to_gemm_sum(float* m, double* partial, index_t stride, index_t base,
                             const float* dy, const float* relu_y, index_t nb, index_t k,
                             index_t plane) {
  using I = typename Div::Int;
  const index_t ld = nb * plane, parts = sum_chunks(ld);
  nchw_to_gemm_sum_kernel<<<static_cast<unsigned>(k * parts), kReduceBlock, 0, stream()>>>(
      m, partial, stride, base, dy, relu_y, I(k), I(ld), parts, Div(plane));
  FC_LAUNCH_CHECK();
}

}  // namespace

// Each takes the 32-bit path (FastDivU32, int32 index math) where every size it indexes fits.

void gemm_to_nchw(float* y, const float* m, const float* bias, index_t nb, index_t k,
                  index_t plane, bool relu) {
  if (nb * k * plane == 0) return;
  if (index32_fits({nb * k * plane}))
    launch_gemm_to_nchw<FastDivU32>(y, m, bias, nb, k, plane, relu);
  else
    launch_gemm_to_nchw<PlainDiv>(y, m, bias, nb, k, plane, relu);
}

void nchw_to_gemm(float* m, const float* dy, const float* relu_y, index_t nb, index_t k,
                  index_t plane) {
  if (nb * k * plane == 0) return;
  if (index32_fits({nb * k * plane}))
    launch_nchw_to_gemm<FastDivU32>(m, dy, relu_y, nb, k, plane);
  else
    launch_nchw_to_gemm<PlainDiv>(m, dy, relu_y, nb, k, plane);
}

void nchw_to_gemm_sum(float* m, double* partial, index_t stride, index_t base, const float* dy,
                      const float* relu_y, index_t nb, index_t k, index_t plane) {
  if (k == 0) return;
  if (index32_fits({nb * k * plane, nb * plane + kSumChunk}))
    launch_nchw_to_gemm_sum<FastDivU32>(m, partial, stride, base, dy, relu_y, nb, k, plane);
  else
    launch_nchw_to_gemm_sum<PlainDiv>(m, partial, stride, base, dy, relu_y, nb, k, plane);
}

}  // namespace fastconv::cuda
