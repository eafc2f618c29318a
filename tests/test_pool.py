import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from fastconv._native import C
from helpers import (DTYPES, assert_close, assert_grad, numerical_grad, rand,
                     raises_exactly)

# (x shape, filter, stride, padding): batch 1 and many; 1, 3 and many channels; odd and
# non-square images; filters 1-5 incl. non-square; stride below, equal to and above the filter;
# padding up to half the filter. The 2x2 stride-2 cases exercise the fast path.
CASES = [
    ((1, 1, 5, 5), 1, 1, 0),
    ((2, 3, 7, 6), 2, 2, 0),
    ((2, 3, 8, 8), 2, 2, 0),
    ((1, 3, 7, 9), 3, 1, 1),
    ((4, 16, 9, 7), 3, 2, 1),
    ((3, 5, 11, 10), (2, 3), (1, 2), (1, 1)),
    ((2, 2, 9, 9), 2, 3, 1),
    ((1, 4, 10, 13), 5, 2, 2),
    ((2, 1, 6, 5), (4, 5), (3, 2), (2, 1)),
    ((2, 3, 5, 4), (1, 3), (2, 1), (0, 1)),
    ((5, 2, 13, 6), 4, 4, 0),
    ((1, 40, 6, 6), 3, 3, 1),
]
IDS = [f"{s}-k{k}-s{st}-p{p}".replace(" ", "") for s, k, st, p in CASES]


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _overlap(k, s):
    """How many windows can read one input element: the length of a backward gather's sum."""
    (kh, kw), (sh, sw) = _pair(k), _pair(s)
    return -(-kh // sh) * -(-kw // sw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_max_pool_matches_reference(shape, k, s, p, ceil_mode, dtype):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape, dtype=dtype)
    y, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
    y_ref, idx_ref = ref.max_pool2d_forward(x.astype(np.float64), k, s, p, ceil_mode)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # a maximum is exact
    dy = rand(rng, *y.shape, dtype=dtype)
    dx = ops.max_pool2d_backward(x, dy, idx, k, s, p, ceil_mode)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, ref.max_pool2d_backward(x.astype(np.float64), dy.astype(np.float64), idx,
                                             k, s, p, ceil_mode), reduction=_overlap(k, s))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_average_pool_matches_reference(shape, k, s, p, ceil_mode, count_include_pad, dtype):
    rng = np.random.default_rng(1)
    x = rand(rng, *shape, dtype=dtype)
    x64 = x.astype(np.float64)
    y = ops.average_pool2d_forward(x, k, s, p, ceil_mode, count_include_pad)
    assert y.dtype == dtype
    kh, kw = _pair(k)
    assert_close(y, ref.average_pool2d_forward(x64, k, s, p, ceil_mode, count_include_pad),
                 reduction=kh * kw)
    dy = rand(rng, *y.shape, dtype=dtype)
    dx = ops.average_pool2d_backward(x, dy, k, s, p, ceil_mode, count_include_pad)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, ref.average_pool2d_backward(x64, dy.astype(np.float64), k, s, p, ceil_mode,
                                                 count_include_pad), reduction=_overlap(k, s))


# ---- the exact cases from the issue ------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_average_pool_counts_padding_in_divisor(dtype):
    y = ops.average_pool2d_forward(np.ones((1, 1, 3, 3), dtype), 3, 1, 1)
    expected = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-6)
    assert y[0, 0, 1, 1] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_average_pool_ceil_overhang_not_in_divisor(dtype):
    x = np.arange(49, dtype=dtype).reshape(1, 1, 7, 7)
    for cip in (True, False):  # no padding: both divisors are the clipped window
        y = ops.average_pool2d_forward(x, 2, 3, 0, ceil_mode=True, count_include_pad=cip)
        np.testing.assert_array_equal(y[0, 0], [[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]])


def test_average_pool_count_include_pad_false_divides_by_image_elements():
    y = ops.average_pool2d_forward(np.ones((1, 1, 3, 3)), 3, 1, 1, count_include_pad=False)
    np.testing.assert_array_equal(y, np.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ignores_padding(dtype):
    x = -np.ones((2, 3, 4, 5), dtype)
    y, idx = ops.max_pool2d_forward(x, 2, 2, 1)
    assert y.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(y, -1)
    assert idx.min() >= 0 and idx.max() < 4 * 5


def test_ceil_mode_keeps_window_starting_in_image_only():
    x = np.zeros((1, 1, 3, 3))
    assert ops.max_pool2d_forward(x, 2, 2, 1, ceil_mode=True)[0].shape == (1, 1, 2, 2)
    assert C.pool_out_size(3, 2, 2, 1, True) == 2
    # Without the rule the ceil formula would give 3 windows here, the last in the padding alone.
    assert C.pool_out_size(4, 2, 3, 1, True) == 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_overlapping_windows_sum_gradient_at_shared_max(dtype):
    x = np.zeros((1, 1, 5, 5), dtype)
    x[0, 0, 2, 2] = 10  # every 3x3 window of the 5x5 image contains the centre
    y, idx = ops.max_pool2d_forward(x, 3, 1)
    np.testing.assert_array_equal(idx, 2 * 5 + 2)
    dy = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    dx = ops.max_pool2d_backward(x, dy, idx, 3, 1)
    expected = np.zeros((5, 5))
    expected[2, 2] = 45
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stride_above_kernel_leaves_unread_inputs_at_zero(dtype):
    rng = np.random.default_rng(2)
    x = rand(rng, 2, 3, 8, 8, dtype=dtype)
    unread = np.zeros((8, 8), bool)
    unread[2::3, :] = unread[:, 2::3] = True  # k2 s3: rows/cols 2, 5 lie between windows
    y, idx = ops.max_pool2d_forward(x, 2, 3)
    dy = rand(rng, *y.shape, dtype=dtype) + 5  # never zero
    dx = ops.max_pool2d_backward(x, dy, idx, 2, 3)
    assert (dx[:, :, unread] == 0).all()
    dxa = ops.average_pool2d_backward(x, dy, 2, 3)
    assert (dxa[:, :, unread] == 0).all() and (dxa[:, :, ~unread] != 0).all()


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), (3, 2)])
def test_max_pool_ties_take_first_in_raster_order(k, s):
    x = np.zeros((1, 2, 6, 6), np.float32)
    y, idx = ops.max_pool2d_forward(x, k, s)
    o = np.arange(idx.shape[2]) * s
    np.testing.assert_array_equal(idx[0, 0], o[:, None] * 6 + o[None, :])
    x = np.array([[[[1, 3], [3, 1]]]], np.float64)
    assert ops.max_pool2d_forward(x, 2, 2)[1][0, 0, 0, 0] == 1


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), ((2, 3), 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_propagates_nan(k, s, dtype):
    x = np.arange(36, dtype=dtype).reshape(1, 1, 6, 6)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 1, 0] = 1e30  # a larger value before the NaN in raster order must not win
    x[0, 0, 1, 2] = np.nan
    y, idx = ops.max_pool2d_forward(x, k, s)
    y_ref, idx_ref = ref.max_pool2d_forward(x, k, s)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN for assert_array_equal
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 7
    assert not np.isnan(y[0, 0, -1, -1])
    dx = ops.max_pool2d_backward(x, np.ones_like(y), idx, k, s)
    assert dx[0, 0, 1, 1] >= 1 and dx[0, 0, 1, 0] == 0


def test_max_pool_backward_accepts_narrower_integer_indices():
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 3, 7, 7)
    y, idx = ops.max_pool2d_forward(x, 3, 2, 1)
    dy = rand(rng, *y.shape)
    np.testing.assert_array_equal(ops.max_pool2d_backward(x, dy, idx.astype(np.int32), 3, 2, 1),
                                  ops.max_pool2d_backward(x, dy, idx, 3, 2, 1))


# ---- gradients vs central differences ----------------------------------------------------------

GRAD_CASES = [(3, 2, 1, True), (2, 2, 0, False), ((2, 3), (1, 2), (1, 1), False), (2, 3, 1, True)]


@pytest.mark.parametrize("k,s,p,ceil_mode", GRAD_CASES)
def test_max_pool_gradient(k, s, p, ceil_mode):
    rng = np.random.default_rng(4)
    shape = (1, 2, 5, 6)
    # Distinct values 0.1 apart: no near-ties, so the argmax is stable under the perturbation.
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1
    y, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
    g = rand(rng, *y.shape)
    num = numerical_grad(lambda: float((ops.max_pool2d_forward(x, k, s, p, ceil_mode)[0] * g)
                                       .sum()), x)
    assert_grad(ops.max_pool2d_backward(x, g, idx, k, s, p, ceil_mode), num)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("k,s,p,ceil_mode", GRAD_CASES)
def test_average_pool_gradient(k, s, p, ceil_mode, count_include_pad):
    rng = np.random.default_rng(5)
    x = rand(rng, 1, 2, 5, 6)
    args = (k, s, p, ceil_mode, count_include_pad)
    g = rand(rng, *ops.average_pool2d_forward(x, *args).shape)
    num = numerical_grad(lambda: float((ops.average_pool2d_forward(x, *args) * g).sum()), x)
    assert_grad(ops.average_pool2d_backward(x, g, *args), num)


# ---- determinism -------------------------------------------------------------------------------

def _run_all(x, k, s, p, dy_seed):
    y, idx = ops.max_pool2d_forward(x, k, s, p)
    dy = rand(np.random.default_rng(dy_seed), *y.shape, dtype=x.dtype)
    ya = ops.average_pool2d_forward(x, k, s, p)
    return (y, idx, ops.max_pool2d_backward(x, dy, idx, k, s, p), ya,
            ops.average_pool2d_backward(x, dy, k, s, p))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_deterministic_across_runs_and_threads(k, s, p):
    # Large enough (> 2^15 elements) that the kernels go parallel.
    x = rand(np.random.default_rng(6), 4, 16, 24, 23, dtype=np.float32)
    first = _run_all(x, k, s, p, 7)
    for a, b in zip(first, _run_all(x, k, s, p, 7)):
        assert a.tobytes() == b.tobytes()
    old = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        one = _run_all(x, k, s, p, 7)
        fc.set_num_threads(2)
        two = _run_all(x, k, s, p, 7)
    finally:
        fc.set_num_threads(old)
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()


# ---- the shared geometry, against brute force --------------------------------------------------

def test_geometry_helpers_match_brute_force():
    for size in range(1, 9):
        for k in range(1, 6):
            for s in range(1, 5):
                for p in range(0, k // 2 + 1):
                    for ceil_mode in (False, True):
                        _check_geometry(size, k, s, p, ceil_mode)


def _check_geometry(size, k, s, p, ceil_mode):
    span = size + 2 * p - k
    if span < 0:
        expected = 0
    else:  # window o starts at o*s - p; count the starts the rule admits
        starts = range(0, span + s) if ceil_mode else range(0, span + 1)
        expected = sum(1 for o in range(size + 2 * p + 1)
                       if o * s in starts and o * s - p < size)
    out = C.pool_out_size(size, k, s, p, ceil_mode)
    assert out == expected, (size, k, s, p, ceil_mode)
    for o in range(out):
        taps = [o * s - p + t for t in range(k)]
        inside = [i for i in taps if 0 <= i < size]
        padded = sum(1 for i in taps if -p <= i < size + p)
        assert C.pool_window(o, k, s, p, size) == (min(inside), max(inside) + 1, padded)
    for i in range(size):
        readers = [o for o in range(out) if o * s - p <= i < o * s - p + k]
        first, last = C.pool_outputs_reading(i, k, s, p, out)
        assert list(range(first, last)) == readers, (i, size, k, s, p, ceil_mode)


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
