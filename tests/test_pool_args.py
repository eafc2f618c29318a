"""Pooling's malformed calls and extreme geometry: each refused with a message naming the argument,
or answered exactly (the kernels' tests: test_pool.py)."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
from fastconv._native import C
from helpers import DTYPES, rand, raises_exactly


# ---- malformed calls ---------------------------------------------------------------------------

I64 = 2**63 - 1
RANGE = "[-9223372036854775808, 9223372036854775807]"
X = np.zeros((2, 3, 6, 6), np.float32)
Y, IDX = ops.max_pool2d_forward(X, 2, 2)  # (2, 3, 3, 3)
BAD = [
    ("x-None", lambda: ops.max_pool2d_forward(None, 2, 2), TypeError,
     "x must be a numpy array or a fastconv DeviceArray; got None"),
    ("x-list", lambda: ops.average_pool2d_forward([[1.0]], 2, 2), TypeError,
     "x must be a numpy array or a fastconv DeviceArray; got list"),
    ("x-ndim", lambda: ops.max_pool2d_forward(X[0], 2, 2), ValueError,
     "x must be 4-D (N, C, H, W); got shape (3, 6, 6)"),
    ("x-int", lambda: ops.average_pool2d_forward(X.astype(np.int32), 2, 2), TypeError,
     "x must have dtype float32 or float64; got int32"),
    ("x-noncontig", lambda: ops.max_pool2d_forward(np.zeros((2, 3, 6, 12), np.float32)[..., ::2],
                                                   2, 2),
     ValueError, "x must be C-contiguous (pass numpy.ascontiguousarray(x)); got shape "
     "(2, 3, 6, 6) with strides (864, 288, 48, 8)"),
    ("filter0", lambda: ops.max_pool2d_forward(X, 0, 1), ValueError,
     "filter must be >= 1 in both dimensions; got (0, 0)"),
    ("filter-bool", lambda: ops.average_pool2d_forward(X, True, 1), TypeError,
     "filter must be an int or a pair of ints; got bool True"),
    ("filter-3", lambda: ops.max_pool2d_forward(X, (2, 2, 2), 1), ValueError,
     "filter must be an int or a pair of ints (h, w); got (2, 2, 2)"),
    ("stride-neg", lambda: ops.average_pool2d_forward(X, 2, -1), ValueError,
     "stride must be >= 1 in both dimensions; got (-1, -1)"),
    ("padding-half", lambda: ops.max_pool2d_forward(X, 3, 1, 2), ValueError,
     "padding must be at most half the filter size; got padding (2, 2) for filter (3, 3)"),
    ("padding-neg", lambda: ops.average_pool2d_forward(X, 2, 1, -1), ValueError,
     "padding must be >= 0 in both dimensions; got (-1, -1)"),
    ("output<1", lambda: ops.max_pool2d_forward(np.zeros((1, 1, 2, 9)), 3, 1), ValueError,
     "x.shape[2] (height) + 2 * padding must be at least the filter height 3; "
     "got height 2 with padding 0"),
    ("output<1-width", lambda: ops.average_pool2d_forward(X, (2, 9), 1, (0, 1)), ValueError,
     "x.shape[3] (width) + 2 * padding must be at least the filter width 9; "
     "got width 6 with padding 1"),
    ("ceil_mode-None", lambda: ops.max_pool2d_forward(X, 2, 2, 0, None), TypeError,
     "ceil_mode must be a bool; got NoneType None"),
    ("ceil_mode-str-bwd", lambda: ops.max_pool2d_backward(X, Y, IDX, 2, 2, 0, "yes"), TypeError,
     "ceil_mode must be a bool; got str 'yes'"),
    ("count_include_pad-str",
     lambda: ops.average_pool2d_forward(X, 2, 2, 0, False, "no"), TypeError,
     "count_include_pad must be a bool; got str 'no'"),
    ("count_include_pad-int-bwd",
     lambda: ops.average_pool2d_backward(X, Y, 2, 2, 0, False, 1), TypeError,
     "count_include_pad must be a bool; got int 1"),
    ("indices-float", lambda: ops.max_pool2d_backward(X, Y, IDX.astype(np.float32), 2, 2),
     TypeError, "indices must have an integer dtype; got float32"),
    ("indices-shape", lambda: ops.max_pool2d_backward(X, Y, IDX[:, :, :2].copy(), 2, 2),
     ValueError, "indices.shape[2] must be 3 (the output height); got shape (2, 3, 2, 3)"),
    ("indices-ndim", lambda: ops.max_pool2d_backward(X, Y, IDX[0], 2, 2), ValueError,
     "indices must be 4-D (N, C, OH, OW); got shape (3, 3, 3)"),
    ("indices-None", lambda: ops.max_pool2d_backward(X, Y, None, 2, 2), TypeError,
     "indices must be a numpy array (N, C, OH, OW); got None"),
    ("dy-batch", lambda: ops.max_pool2d_backward(X, Y[:1], IDX, 2, 2), ValueError,
     "dy.shape[0] must be 2 (x's batch); got shape (1, 3, 3, 3)"),
    ("dy-width", lambda: ops.average_pool2d_backward(X, Y[:, :, :, :2].copy(), 2, 2),
     ValueError, "dy.shape[3] must be 3 (the output width); got shape (2, 3, 3, 2)"),
    ("dy-f64", lambda: ops.average_pool2d_backward(X, Y.astype(np.float64), 2, 2), TypeError,
     "dy must have the dtype of x (float32); got float64"),
    ("dy-None", lambda: ops.max_pool2d_backward(X, None, IDX, 2, 2), TypeError,
     "dy must be a numpy array (N, C, OH, OW); got None"),
    # empty axes (average pooling crashed on H == 0; max pooling returned garbage)
    ("avg-height0", lambda: fc.average_pool2d(np.zeros((1, 1, 0, 4), "f4"), filter=2, padding=1),
     ValueError, "x.shape[2] (height) must be positive; got shape (1, 1, 0, 4)"),
    ("max-height0", lambda: fc.max_pool2d(np.zeros((3, 2, 0, 4), "f4"), filter=2, padding=1),
     ValueError, "x.shape[2] (height) must be positive; got shape (3, 2, 0, 4)"),
    ("max-width0", lambda: ops.max_pool2d_forward(np.zeros((3, 2, 4, 0), "f4"), 2, 1, 1),
     ValueError, "x.shape[3] (width) must be positive; got shape (3, 2, 4, 0)"),
    ("avg-width0-bwd",
     lambda: ops.average_pool2d_backward(np.zeros((1, 1, 4, 0), "f4"), Y, 2, 1, 1), ValueError,
     "x.shape[3] (width) must be positive; got shape (1, 1, 4, 0)"),
    ("batch0", lambda: ops.max_pool2d_forward(np.zeros((0, 2, 4, 4), "f4"), 2), ValueError,
     "x.shape[0] (batch) must be positive; got shape (0, 2, 4, 4)"),
    ("channels0", lambda: ops.average_pool2d_forward(np.zeros((1, 0, 4, 4), "f4"), 2),
     ValueError, "x.shape[1] (channels) must be positive; got shape (1, 0, 4, 4)"),
    # sizes past int64 (pybind11 answered with its signature)
    ("filter-2**63", lambda: ops.max_pool2d_forward(X, 2**63), ValueError,
     f"filter must hold int64 values, in {RANGE}; got {2**63}"),
    ("stride-2**63", lambda: ops.average_pool2d_forward(X, 2, (1, 2**63)), ValueError,
     f"stride must hold int64 values, in {RANGE}; got (1, {2**63})"),
    ("padding-2**64", lambda: ops.max_pool2d_backward(X, Y, IDX, 2, 2, -(2**64)), ValueError,
     f"padding must hold int64 values, in {RANGE}; got {-(2**64)}"),
    # sizes that fit but whose arithmetic would not
    ("filter-max", lambda: ops.max_pool2d_forward(X, I64), ValueError,
     f"x.shape[2] (height) + 2 * padding must be at least the filter height {I64}; "
     "got height 6 with padding 0"),
    ("padding-over-half-max", lambda: ops.max_pool2d_forward(X, I64, 1, 2**62), ValueError,
     f"padding must be at most half the filter size; got padding ({2**62}, {2**62}) "
     f"for filter ({I64}, {I64})"),
    ("padding-overflow", lambda: ops.average_pool2d_forward(X, I64, 1, 2**62 - 1), ValueError,
     "padding must be at most 4611686018427387900 for an input height of 6, so that height "
     f"+ 2 * padding fits in int64; got ({2**62 - 1}, {2**62 - 1})"),
]


@pytest.mark.parametrize("call,error,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_calls_raise_naming_the_argument(call, error, message):
    with raises_exactly(error, message):
        call()


# ---- huge windows, strides and padding: the right answer, not an overflow ----------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_window_average_is_the_true_mean(dtype):
    # filter 2**32, padding 2**31: every window holds the whole 4x4 image and 2**64 padded
    # positions. The divisor (2**32 * 2**32) wrapped to 0 in int64 and the mean came out inf.
    x = np.ones((1, 1, 4, 4), dtype)
    y = ops.average_pool2d_forward(x, 2**32, 1, 2**31)
    np.testing.assert_array_equal(y, np.full((1, 1, 5, 5), 16 * 2.0**-64, dtype))
    y_in = ops.average_pool2d_forward(x, 2**32, 1, 2**31, count_include_pad=False)
    np.testing.assert_array_equal(y_in, np.ones((1, 1, 5, 5), dtype))
    # Backward: each input lies in all 25 windows.
    dx = ops.average_pool2d_backward(x, np.ones_like(y), 2**32, 1, 2**31)
    np.testing.assert_array_equal(dx, np.full(x.shape, 25 * 2.0**-64, dtype))
    node = fc.average_pool2d(x, filter=2**32, padding=2**31)
    np.testing.assert_array_equal(node.as_ndarray(), y)


def test_largest_windows_keep_a_finite_divisor():
    # Two extents of 2**62 each: a divisor of 2**124, still a finite float32.
    x = np.full((1, 1, 6, 6), 2.0, np.float32)
    y = ops.average_pool2d_forward(x, 2**62, 1, 2**61)
    np.testing.assert_array_equal(y, np.full((1, 1, 7, 7), 72 * 2.0**-124, np.float32))


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("stride", [7, 2**62, I64])
def test_a_stride_past_the_image_gives_the_first_window(stride, ceil_mode):
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 3, 6, 6)
    y, idx = ops.max_pool2d_forward(x, 3, stride, 1, ceil_mode)
    want, want_idx = ops.max_pool2d_forward(x, 3, 7, 1, ceil_mode)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(idx, want_idx)
    a = ops.average_pool2d_forward(x, 3, stride, 1, ceil_mode)
    np.testing.assert_array_equal(a, ops.average_pool2d_forward(x, 3, 7, 1, ceil_mode))
    dy = rand(rng, *a.shape)
    np.testing.assert_array_equal(ops.average_pool2d_backward(x, dy, 3, stride, 1, ceil_mode),
                                  ops.average_pool2d_backward(x, dy, 3, 7, 1, ceil_mode))
    np.testing.assert_array_equal(ops.max_pool2d_backward(x, dy, idx, 3, stride, 1, ceil_mode),
                                  ops.max_pool2d_backward(x, dy, want_idx, 3, 7, 1, ceil_mode))


def test_the_output_may_outgrow_the_input():
    # Pooling can add a row and a column of outputs, so the output may hold more elements than
    # the input: its shape comes from the geometry, not from x's size.
    for shape, want in [((3, 1, 1, 1), (3, 1, 2, 2)), ((2, 1, 1, 3), (2, 1, 2, 4))]:
        x = np.zeros(shape, np.float32)
        y, idx = C.max_pool2d_forward(x, (2, 2), (1, 1), (1, 1), False)
        assert y.shape == idx.shape == want
        assert C.average_pool2d_forward(x, (2, 2), (1, 1), (1, 1), False, True).shape == want
    with raises_exactly(TypeError, "ceil_mode must be a bool; got int"):
        C.max_pool2d_forward(np.zeros((1, 1, 4, 4)), (2, 2), (1, 1), (0, 0), 1)
