// Shape structs built from validated arguments, shared by the CPU and CUDA bindings.
//
// Everything a kernel computes from a shape must fit in int64, so the checks here bound it all:
// the padded input (H + 2p), the kernel's reach (d(kh - 1) + 1), and every element count a call
// derives (input, weights, output, one sample's im2col matrix) below kMaxElements, so that even
// its size in bytes fits. A shape that passes cannot make a kernel's index math overflow.
#pragma once
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "fastconv/geometry.h"
#include "python/checks.h"

namespace fastconv::bind {

using Pair = std::array<index_t, 2>;  // (h, w)

// A size argument (stride, padding, dilation, filter) as the ops layer takes it: an int (both
// dimensions) or an (h, w) pair of ints that fit in int64, else a TypeError or ValueError naming
// it in the words of fastconv.ops._args.pair, so that a direct call on _C or _cuda is answered as
// the Python layer would answer it (signatures.h routes every Pair parameter through here).
Pair pair_arg(py::handle obj, const char* name);

// 2**60: an array of this many float64 elements is 2**63 bytes, just past int64.
constexpr index_t kMaxElements = index_t{1} << 60;

// ---- Each op's checks on shapes -------------------------------------------------------------
// The CPU bindings (numpy arrays) and the CUDA bindings (device arrays) check rank and dtype as
// they convert their arrays, then hand the shapes here, so that the two word every other error
// alike. Where a check takes several arrays, the dtypes already agree (the CPU binding checks
// that; the GPU takes float32 only).

// conv2d: x (N, C, H, W) and w (K, C, kh, kw), already 4-D: checks channels, stride/dilation
// >= 1, padding >= 0, positive sizes, an output of at least 1 x 1, and the overflow bounds above.
Conv2dShape conv2d_shape(const Dims& x, const Dims& w, Pair stride, Pair padding, Pair dilation);
Dims conv2d_out_dims(const Conv2dShape& s);  // (N, K, OH, OW)
// conv2d_backward's dy: exactly the output's shape.
void check_conv_dy(const Dims& dy, const Conv2dShape& s);

// Pooling: x (N, C, H, W), already 4-D: checks filter/stride >= 1, 0 <= padding <= filter / 2
// (so every window sees at least one input element), positive sizes, an output of at least
// 1 x 1 and the overflow bounds.
Pool2dShape pool2d_shape(const Dims& x, Pair filter, Pair stride, Pair padding, bool ceil_mode);
Dims pool2d_out_dims(const Pool2dShape& s);  // (N, C, OH, OW)
// dy or indices of a pooling call: (N, C, OH, OW) of x and the output, each axis checked by name.
void check_pool_out(const Dims& shape, const char* name, const Pool2dShape& s);

// Dense: x (N, In) and w (In, Out), already 2-D, every size >= 1.
struct DenseShape {
  index_t n, in, out;
};
DenseShape dense_shape(const Dims& x, const Dims& w);
void check_dense_bias(const Dims& b, const DenseShape& s);  // (Out,) or (1, Out)
void check_dense_dy(const Dims& dy, const DenseShape& s);   // (N, Out)

// The (N, C, inner) view of an array of rank >= 2 that bias_add/bias_grad take; it must not be
// empty.
struct ChannelView {
  index_t n, c, inner;
};
ChannelView channel_view(const Dims& shape, const char* name);
// bias_add's b: C elements, in any shape.
void check_bias_elements(const Dims& b, index_t c);

// Logits z (N, C), already 2-D, of the loss and accuracy_count: both sizes >= 1.
void check_logits(const Dims& z);

// A dataset of gather_batch: rank >= 1 (rows along axis 0). Its indices, where they are on the
// host: each in [0, rows), else a ValueError giving the first one outside and its position.
void check_dataset(const Dims& data);
void check_indices(const std::int64_t* indices, index_t count, index_t rows);

// One axis of the geometry, for the shape functions above and the scalar geometry bindings.
// Raise a ValueError naming padding (in + 2p) or dilation (the kernel's reach) when that size
// would not fit in int64; `axis` words the message ("height", "width", "size") and `*_got` is
// the argument as received. Otherwise the output size, which is 0 when no window fits.
index_t conv_axis_size(const char* axis, index_t in, index_t k, index_t s, index_t p, index_t d,
                       const std::string& padding_got, const std::string& dilation_got);
index_t pool_axis_size(const char* axis, index_t in, index_t k, index_t s, index_t p,
                       bool ceil_mode, const std::string& padding_got);

// A 4-D shape given as a numpy array (a float32/float64 one, as the kernels take) or as a tuple
// or list of ints, for the output-shape queries.
Dims shape4_arg(py::handle obj, const char* name, const char* layout);

}  // namespace fastconv::bind
