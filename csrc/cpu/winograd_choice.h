// Which algorithm a convolution runs: the process-wide setting and the per-shape choice.
//
// "im2col" always takes im2col + GEMM; "winograd" takes Winograd wherever it applies (3x3,
// stride 1, dilation 1, float32) with the tile chosen per shape, "winograd_f2"/"winograd_f4" with
// that tile; "auto" (the default) takes Winograd where it applies and the shape is big enough to
// gain from it (see winograd_choice.cpp). Everything else runs im2col.
#pragma once
#include <cstddef>
#include <string>

#include "fastconv/geometry.h"

namespace fastconv::cpu {

// std::invalid_argument naming the allowed values for any other name.
void set_conv_algorithm(const std::string& name);
const char* conv_algorithm();

// The output tile of the Winograd variant that runs for s with elements of elem_bytes: 2 or 4,
// or 0 for im2col.
int winograd_tile(const Conv2dShape& s, std::size_t elem_bytes);

// "im2col", "winograd_f2" or "winograd_f4": what runs for s.
const char* conv2d_algorithm(const Conv2dShape& s, std::size_t elem_bytes);

}  // namespace fastconv::cpu
