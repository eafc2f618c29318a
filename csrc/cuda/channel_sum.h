// The bias gradient's deterministic two-stage sum on the GPU (channel_sum.cu), shared by
// bias_grad (dense.h) and conv2d_backward, which folds the first stage into its dy layout pass
// (conv_layout.h's nchw_to_gemm_sum).
//   stage 1: each channel's terms in chunks of kSumChunk, one block a chunk: thread t sums terms
//            t, t + kReduceBlock, ... of its chunk in double, then the block's fixed tree, into
//            one partial sum per (channel, chunk);
//   stage 2: channel_totals, one warp a channel over its partials in a fixed lane order.
// Every add's operands are fixed by the shape and the block size: reruns are bitwise equal.
#pragma once
#include "fastconv/common.h"

namespace fastconv::cuda {

// 16 terms a thread: ~3,100 blocks for the tutorial's conv2 at batch 256 (64 channels).
constexpr index_t kSumChunk = 4096;

// Chunks for `terms` terms (at least one, so an empty sum still writes its 0).
inline index_t sum_chunks(index_t terms) { return terms == 0 ? 1 : (terms - 1) / kSumChunk + 1; }

// db[ch] = float(sum over i < parts of partial[ch * parts + i]), in double.
void channel_totals(float* db, const double* partial, index_t c, index_t parts);

}  // namespace fastconv::cuda
