// Shape structs built from validated arguments, shared by the CPU and CUDA bindings.
#pragma once
#include <pybind11/stl.h>

#include <array>

#include "fastconv/geometry.h"
#include "python/checks.h"

namespace fastconv::bind {

using Pair = std::array<index_t, 2>;  // (h, w)

// x (N, C, H, W) and w (K, C, kh, kw), already checked for rank: checks channels,
// stride/dilation >= 1, padding >= 0 and an output of at least 1 x 1. Works on shapes, so the CPU
// and CUDA bindings share it; the numpy form also checks that w's dtype is x's.
Conv2dShape conv2d_shape(const Dims& x, const Dims& w, Pair stride, Pair padding, Pair dilation);
Conv2dShape conv2d_shape(const py::array& x, const py::array& w, Pair stride, Pair padding,
                         Pair dilation);

// x (N, C, H, W): checks filter/stride >= 1, 0 <= padding <= filter / 2 (so every window sees at
// least one input element) and an output of at least 1 x 1.
Pool2dShape pool2d_shape(const Dims& x, Pair filter, Pair stride, Pair padding, bool ceil_mode);
Pool2dShape pool2d_shape(const py::array& x, Pair filter, Pair stride, Pair padding,
                         bool ceil_mode);

}  // namespace fastconv::bind
