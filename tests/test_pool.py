import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from fastconv._native import C
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, rand

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


# ---- the vectorised 2x2 stride-2 planes (cpu/pool_2x2.h: four windows at a time, the last step
# of a row overlapping the one before; rows of under four windows take the scalar loop) ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("w", range(2, 22))
def test_max_pool_2x2_rows_keep_first_max_nan_and_signed_zeros(w, dtype):
    """Every row length from 1 window (scalar) through one vector step to several plus an
    overlapping last step over 1-3 more windows, odd and even widths, with values drawn from a few (ties everywhere), NaN, +-inf and both zeros: y and
    the indices must equal the reference's bit for bit, and dx must be dy at the argmax, +0
    elsewhere."""
    rng = np.random.default_rng(w)
    pool = np.array([-1.0, -0.0, 0.0, 1.0, 2.0, np.inf, -np.inf, np.nan], dtype)
    x = pool[rng.integers(0, pool.size, size=(2, 3, 7, w))]
    y, idx = ops.max_pool2d_forward(x, 2, 2)
    y_ref, idx_ref = ref.max_pool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(idx, idx_ref)
    # The winner's bits: -0.0 and 0.0 compare equal, so a tie keeps whichever came first.
    assert y.tobytes() == np.take_along_axis(
        x.reshape(2, 3, -1), idx.reshape(2, 3, -1), axis=2).reshape(y.shape).tobytes()
    np.testing.assert_array_equal(y, y_ref)
    dy = rand(rng, *y.shape, dtype=dtype)
    dy[rng.random(dy.shape) < 0.2] = -0.0
    dy[0, 0, 0, 0] = np.nan
    dx = ops.max_pool2d_backward(x, dy, idx, 2, 2)
    expected = np.zeros_like(x).reshape(2, 3, -1)
    np.put_along_axis(expected, idx.reshape(2, 3, -1), dy.reshape(2, 3, -1), axis=2)
    assert dx.tobytes() == expected.reshape(x.shape).tobytes()


def test_max_pool_2x2_backward_ignores_an_index_outside_its_window():
    """An index naming no input of its window leaves the window's four inputs at +0, in the
    vector steps as in the overlapping last step (the indices are not range-checked, only
    used)."""
    x = np.zeros((1, 1, 2, 10), np.float32)
    dy = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 1, 5)
    idx = np.array([0, 2, 4, 6, 8], np.int64).reshape(1, 1, 1, 5)
    idx[0, 0, 0, 1] = 5  # window 1 covers columns 2-3: 5 is window 2's
    idx[0, 0, 0, 4] = 3  # the last step's own window covers columns 8-9
    dx = ops.max_pool2d_backward(x, dy, idx, 2, 2)
    expected = np.zeros((1, 1, 2, 10), np.float32)
    expected[0, 0, 0, [0, 4, 6]] = [1, 3, 4]
    assert dx.tobytes() == expected.tobytes()


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (3, 1, 0), (2, 2, 1)])
def test_max_pool_backward_scatters_only_indices_inside_their_window(k, s, p):
    """The general backward adds each output's gradient at the input its index names, only if
    that input lies in the output's window: an index from another window, negative, or far past
    the plane adds nothing (indices are used, not range-checked). Checked against a brute force
    over the windows, summing in raster order of the outputs."""
    rng = np.random.default_rng(k * 10 + s)
    x = rand(rng, 2, 3, 9, 8)
    y, idx = ops.max_pool2d_forward(x, k, s, p)
    idx = idx.copy()
    flat = idx.reshape(-1)
    bad = rng.random(flat.size) < 0.3
    flat[bad] = rng.choice([-1, 5, 71, 2**62, -2**63, 2**63 - 1], size=bad.sum())
    dy = rand(rng, *y.shape)
    dx = ops.max_pool2d_backward(x, dy, idx, k, s, p)
    expected = np.zeros_like(x)
    h, w = x.shape[2:]
    for n, c, oi, oj in np.ndindex(*y.shape):
        rows = range(max(oi * s - p, 0), min(oi * s - p + k, h))
        cols = range(max(oj * s - p, 0), min(oj * s - p + k, w))
        at = int(idx[n, c, oi, oj])
        if at >= 0 and at // w in rows and at % w in cols:
            expected[n, c, at // w, at % w] += dy[n, c, oi, oj]
    assert dx.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (1, 1, 2, 2), (3, 2, 9, 13), (2, 4, 28, 28)])
def test_average_pool_2x2_planes_sum_in_the_general_order(shape, dtype):
    """Whole 2x2 stride-2 windows take their own loops (cpu/avg_pool_2x2.h): each row's pair
    summed from +0, the two rows added, divided by 4 (forward); +0 + dy / 4 at each input of a
    window, +0 in an odd last row or column (backward). The same operations in numpy give the
    same values, signed zeros included (a NaN's sign may differ)."""
    rng = np.random.default_rng(sum(shape))
    pool = np.array([-1.5, -0.0, 0.0, 1.0, 2.5, np.inf, -np.inf, np.nan, 1e-40, -3e38, 3e38])
    for x in (rand(rng, *shape, dtype=dtype), pool[rng.integers(0, pool.size, shape)].astype(dtype)):
        oh, ow = shape[2] // 2, shape[3] // 2
        a, b = x[..., 0:2 * oh:2, 0:2 * ow:2], x[..., 0:2 * oh:2, 1:2 * ow:2]
        c, d = x[..., 1:2 * oh:2, 0:2 * ow:2], x[..., 1:2 * oh:2, 1:2 * ow:2]
        zero = dtype(0)
        with np.errstate(invalid="ignore", over="ignore"):
            expected = (((zero + a) + b) + ((zero + c) + d)) / dtype(4)
        for cip in (True, False):
            y = ops.average_pool2d_forward(x, 2, 2, 0, False, cip)
            np.testing.assert_array_equal(y, expected)
            assert (np.signbit(y) == np.signbit(expected))[~np.isnan(y)].all()
        dy = pool[rng.integers(0, pool.size, (shape[0], shape[1], oh, ow))].astype(dtype)
        dx = ops.average_pool2d_backward(x, dy, 2, 2, 0)
        expected = np.zeros_like(x)
        up = zero + dy / dtype(4)
        for i in (0, 1):
            for j in (0, 1):
                expected[..., i:2 * oh:2, j:2 * ow:2] = up
        np.testing.assert_array_equal(dx, expected)
        assert (np.signbit(dx) == np.signbit(expected))[~np.isnan(dx)].all()
