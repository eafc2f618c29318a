// 2-D convolution (cross-correlation), NCHW, float32, on the GPU: im2col + one cuBLAS GEMM per
// group of samples, the twin of csrc/cpu/conv.h (same arguments, same geometry header).
//   x (n, c, h, w), w (k, c, kh, kw), b (k) or null, y (n, k, oh, ow).
// Samples go through the GEMMs in groups whose im2col columns fit conv2d_column_budget() floats (at least
// one sample), fixed by the shape alone; scratch is one group's columns plus its GEMM-layout
// output, never the whole batch. Everything is queued on stream(); nothing synchronises.
#pragma once
#include <cstddef>

#include "fastconv/geometry.h"

namespace fastconv::cuda {

// y = conv(x, w) + b, or relu(conv(x, w) + b) with `relu`. b may be null (no bias).
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dShape& s, bool relu = false);

// Gradients of sum(y * dy). dx and db may be null (not wanted); dw is always written.
// relu_y: null, or the output of conv2d_forward with relu, whose mask then applies to dy.
void conv2d_backward(float* dx, float* dw, float* db, const float* x, const float* w,
                     const float* dy, const float* relu_y, const Conv2dShape& s);

// The scratch bytes a call uses (the forward and backward use the same amount at most).
std::size_t conv2d_scratch_bytes(const Conv2dShape& s);
// Floats a group's columns and GEMM-layout output may take: half the L2 cache, within 8-64 MiB,
// unless set_conv2d_column_budget has set another size.
index_t conv2d_column_budget();
// A fixed budget in bytes instead (0: back to the L2-sized one), for the benchmark that measures
// what sizing the groups to L2 is worth (benchmarks/switches.py). Not for graph-captured steps.
void set_conv2d_column_budget(std::size_t bytes);

// Which kernels conv2d_forward and conv2d_backward run, process-wide, each set on its own:
// `automatic` takes the implicit-GEMM kernels (conv_implicit.h, conv_implicit_backward.h) only
// where autotuning has timed them faster for the shape (conv_choice.h; im2col + cuBLAS while it
// is off), `im2col` always takes im2col + cuBLAS, `implicit` takes the implicit kernels wherever
// they support the shape. Benchmark and test hooks (benchmarks/switches.py); not for
// graph-captured steps.
enum class ConvKernel { automatic, im2col, implicit };
void set_conv2d_forward_kernel(ConvKernel kernel);
ConvKernel conv2d_forward_kernel();
void set_conv2d_backward_kernel(ConvKernel kernel);
ConvKernel conv2d_backward_kernel();

}  // namespace fastconv::cuda
