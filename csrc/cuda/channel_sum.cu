// The bias gradient db[ch] = sum over (sample j, position p) of dy[j, ch, p] (only where mask > 0
// when a mask is given), in double: the two stages of channel_sum.h. It used to be one block per
// channel (64 blocks on a 132-SM card: 125 GB/s on the H200, 0.41 ms for the tutorial's conv2 at
// batch 256 against a 20 µs floor); now the chunks make thousands of blocks.
#include "cuda/channel_sum.h"

#include "cuda/context.h"
#include "cuda/dense.h"
#include "cuda/device_array.h"
#include "cuda/kernels_common.cuh"
#include "fastconv/fastdiv.h"

namespace fastconv::cuda {
namespace {

// Block b = (channel ch, chunk part), b = ch * parts + part; term e = j*inner + p of channel ch
// lies at dy[(j*c + ch)*inner + p].
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
  // Unrolled so that several loads are in flight; the adds stay in ascending e.
#pragma unroll 4
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

// One warp a channel: lane l sums partials l, l + 32, ...; then the xor butterfly.
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

void channel_totals(float* db, const double* partial, index_t c, index_t parts) {
  if (c == 0) return;
  const index_t want = (c + kRowWarps - 1) / kRowWarps;
  channel_total_kernel<<<static_cast<unsigned>(min_i(want, kMaxBlocks)), kRowWarps * kWarp, 0,
                         stream()>>>(db, partial, c, parts);
  FC_LAUNCH_CHECK();
}

void bias_grad(float* db, const float* dy, const float* mask, index_t n, index_t c,
               index_t inner) {
  if (c == 0) return;
  const index_t terms = n * inner, parts = sum_chunks(terms);
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
  channel_totals(db, pp, c, parts);
}

}  // namespace fastconv::cuda
