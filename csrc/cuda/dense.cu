// The dense layer and the bias on the GPU, the twin of csrc/cpu/dense.cpp: the same three GEMMs
// through cuda::gemm, the bias folded into the forward GEMM, the bias gradient by bias_grad's
// two-stage fixed-order reduction (deterministic: no atomics, a partition fixed by the shape).
#include "cuda/dense.h"

#include "cuda/device_array.h"
#include "cuda/context.h"
#include "cuda/kernels_common.cuh"
#include "fastconv/fastdiv.h"

namespace fastconv::cuda {
namespace {

// Every row of y (n, out) starts as b.
__global__ void fill_rows_kernel(float* y, const float* b, index_t n, index_t out) {
  FC_GRID_LOOP(e, n * out) y[e] = b[e % out];
}

__global__ void bias_add_kernel(float* y, const float* x, const float* b, index_t c,
                                index_t inner, index_t count) {
  FC_GRID_LOOP(i, count) y[i] = __fadd_rn(x[i], b[(i / inner) % c]);
}

// The bias gradient db[ch] = sum over (sample j, position p) of dy[j, ch, p] (where mask > 0),
// in double. It used to be one block per channel (64 blocks on a 132-SM card, 125 GB/s); now
// each channel's n*inner terms are cut into `parts` chunks of kSumChunk terms (the last shorter),
// fixed by the shape alone:
//   stage 1: one block per (channel, chunk); thread t sums terms t, t + kReduceBlock, ... of its
//            chunk, then the block's fixed tree -> partial[ch * parts + chunk];
//   stage 2: one warp per channel sums its partials, lane l taking chunks l, l + 32, ..., then
//            the xor butterfly -> db[ch].
// Every add's operands are fixed by the shape and the block size, so reruns are bitwise equal.
constexpr index_t kSumChunk = 8192;  // 32 terms a thread: ~1,600 blocks for (256, 64, 28*28)

index_t sum_parts(index_t terms) { return terms == 0 ? 1 : (terms - 1) / kSumChunk + 1; }

template <class Div>
__global__ void channel_partial_kernel(double* partial, const float* dy, const float* mask,
                                       typename Div::Int c, typename Div::Int inner,
                                       typename Div::Int terms, index_t parts, Div by_inner) {
  using I = typename Div::Int;
  __shared__ double buf[kReduceBlock];
  const I ch = I(blockIdx.x / parts), part = I(blockIdx.x % parts);  // once a block
  const I first = part * I(kSumChunk);
  const I end = terms - first < I(kSumChunk) ? terms : first + I(kSumChunk);
  double acc = 0.0;
  for (I e = first + I(threadIdx.x); e < end; e += I(kReduceBlock)) {
    I j, p;
    by_inner.divmod(e, &j, &p);
    const I at = (j * c + ch) * inner + p;
    const float v = __ldg(dy + at);
    if (!mask || __ldg(mask + at) > 0.0f) acc += static_cast<double>(v);
  }
  const double total = block_sum(acc, buf);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

__global__ void channel_total_kernel(float* db, const double* partial, index_t c, index_t parts) {
  const int lane = threadIdx.x % kWarp;
  for (index_t ch = blockIdx.x * index_t(kRowWarps) + threadIdx.x / kWarp; ch < c;
       ch += index_t(gridDim.x) * kRowWarps) {
    double acc = 0.0;
    for (index_t i = lane; i < parts; i += kWarp) acc += partial[ch * parts + i];
    acc = warp_sum(acc);
    if (lane == 0) db[ch] = static_cast<float>(acc);
  }
}

}  // namespace

void dense_forward(float* y, const float* x, const float* w, const float* b, index_t n,
                   index_t in, index_t out) {
  if (b) {
    fill_rows_kernel<<<blocks_for(n * out), kBlock, 0, stream()>>>(y, b, n, out);
    FC_LAUNCH_CHECK();
  }
  gemm(false, false, n, out, in, 1.0f, x, in, w, out, b ? 1.0f : 0.0f, y, out);
}

void dense_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                    const float* dy, index_t n, index_t in, index_t out) {
  if (dx) gemm(false, true, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
  gemm(true, false, in, out, n, 1.0f, x, in, dy, out, 0.0f, dw, out);
  // (N, Out) is (N, C, inner = 1): one block per column.
  if (db) bias_grad(db, dy, nullptr, n, out, 1);
}

void bias_add(float* y, const float* x, const float* b, index_t n, index_t c, index_t inner) {
  const index_t count = n * c * inner;
  if (count == 0) return;
  bias_add_kernel<<<blocks_for(count), kBlock, 0, stream()>>>(y, x, b, c, inner, count);
  FC_LAUNCH_CHECK();
}

void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner) {
  if (c == 0) return;
  const index_t terms = n * inner, parts = sum_parts(terms);
  DeviceArray partial({c * parts}, DType::f64);
  double* pp = partial.data<double>();
  const auto blocks = static_cast<unsigned>(c * parts);
  // With no terms (inner == 0) the divider is never used; 1 keeps its set-up defined. The
  // 32-bit path where dy's elements and the last chunk's end fit.
  const index_t divisor = max_i(inner, 1);
  if (index32_fits({n * c * inner, terms + kSumChunk, divisor, c}))
    channel_partial_kernel<<<blocks, kReduceBlock, 0, stream()>>>(
        pp, dy, mask, FastDivU32::Int(c), FastDivU32::Int(inner), FastDivU32::Int(terms), parts,
        FastDivU32(divisor));
  else
    channel_partial_kernel<<<blocks, kReduceBlock, 0, stream()>>>(pp, dy, mask, c, inner, terms,
                                                                  parts, PlainDiv(divisor));
  FC_LAUNCH_CHECK();
  const index_t want = (c + kRowWarps - 1) / kRowWarps;
  channel_total_kernel<<<static_cast<unsigned>(min_i(want, kMaxBlocks)), kRowWarps * kWarp, 0,
                         stream()>>>(db, pp, c, parts);
  FC_LAUNCH_CHECK();
}

}  // namespace fastconv::cuda
