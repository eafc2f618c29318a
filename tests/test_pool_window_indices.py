"""Max pooling's uint8 window codes (window_indices=True; cpu/pool.h): on every shape of the
pooling test matrices the codes equal the reference's conversion of the flat indices, y is the
same bits, and the backward from codes is bit for bit the backward from flat indices -- in the
2x2 stride-2 kernels (SSE, AVX-512 with masked row tails, scalar) and in the general ones. A code
that names no input (past the filter's taps, or on the padding) adds nothing; the errors name
their argument. Outputs are poisoned (tests/conftest.py; uint8 with 255)."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_grad, numerical_grad, raises_exactly, rand
from test_pool import CASES
from test_pool_general import GEOMETRIES, WIDTHS, _values

# The 2x2 stride-2 planes: widths from one window (scalar) through SSE steps, the overlapping
# last step, one and several AVX-512 steps and their masked tails, odd and even.
WIDTHS_2X2 = list(range(2, 42)) + [63, 64, 65]


def _both(x, k, s, p, ceil_mode, dtype):
    """Flat and code forwards and backwards, checked against each other; returns the codes."""
    y, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
    yc, code = ops.max_pool2d_forward(x, k, s, p, ceil_mode, window_indices=True)
    assert code.dtype == np.uint8 and code.shape == idx.shape
    assert yc.tobytes() == y.tobytes()
    np.testing.assert_array_equal(code, ref.window_codes(idx, x, k, s, p, ceil_mode))
    rng = np.random.default_rng(x.size)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy[rng.random(dy.shape) < 0.2] = -0.0
    dx = ops.max_pool2d_backward(x, dy, idx, k, s, p, ceil_mode)
    dxc = ops.max_pool2d_backward(x, dy, code, k, s, p, ceil_mode, window_indices=True)
    assert dxc.dtype == dx.dtype and dxc.tobytes() == dx.tobytes()
    return code


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", CASES)
def test_codes_match_flat_indices_on_the_pool_cases(shape, k, s, p, ceil_mode, dtype):
    x = rand(np.random.default_rng(1), *shape, dtype=dtype)
    code = _both(x, k, s, p, ceil_mode, dtype)
    np.testing.assert_array_equal(
        code, ref.max_pool2d_forward(x.astype(np.float64), k, s, p, ceil_mode, True)[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("k,s,p", GEOMETRIES, ids=[str(g).replace(" ", "") for g in GEOMETRIES])
def test_codes_match_flat_indices_on_the_general_geometries(k, s, p, ceil_mode, dtype):
    rng = np.random.default_rng(3)
    kw = k if isinstance(k, int) else k[1]
    for w in WIDTHS:
        if w >= kw:
            _both(_values(rng, (2, 3, 7 + w % 5, w), dtype), k, s, p, ceil_mode, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h", [2, 3, 5])
def test_codes_match_flat_indices_on_2x2_planes(h, dtype):
    """Ties, NaNs and signed zeros: the first maximum's code, in every row-length path."""
    rng = np.random.default_rng(h)
    for w in WIDTHS_2X2:
        code = _both(_values(rng, (2, 3, h, w), dtype), 2, 2, 0, False, dtype)
        assert code.max(initial=0) <= 3


def _stray(rng, code, limit):
    """code with about a third of its entries replaced by codes past `limit` taps or in it."""
    code = code.copy()
    bad = rng.random(code.shape) < 0.35
    code[bad] = rng.integers(0, 256, size=bad.sum())
    code[rng.random(code.shape) < 0.1] = limit  # the first code past the taps
    return code


def _flat_from_codes(code, x, k, s, p, ceil_mode):
    """The flat index each code names, -1 where it names no input of the plane."""
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    h, w = x.shape[2:]
    oh, ow = code.shape[2:]
    c = code.astype(np.int64)
    r = (np.arange(oh) * sh - ph)[:, None] + c // kw
    col = (np.arange(ow) * sw - pw)[None, :] + c % kw
    named = (c < kh * kw) & (r >= 0) & (r < h) & (col >= 0) & (col < w)
    return np.where(named, r * w + col, -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil_mode", [(2, 2, 0, False), (3, 2, 1, True), (5, 1, 2, False),
                                             ((3, 5), (2, 3), (1, 2), True), (2, 3, 1, True)])
def test_stray_codes_add_nothing(k, s, p, ceil_mode, dtype):
    """A code past the taps or on the padding names nothing: the backward equals the flat one
    with those outputs' indices made stray (-1), bit for bit, and the reference's."""
    rng = np.random.default_rng(11)
    for w in (3, 9, 17, 33):
        x = _values(rng, (2, 2, 9, w), dtype)
        y, code = ops.max_pool2d_forward(x, k, s, p, ceil_mode, window_indices=True)
        kh, kw = (k, k) if isinstance(k, int) else k
        code = _stray(rng, code, kh * kw)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dy.flat[0] = np.nan
        dx = ops.max_pool2d_backward(x, dy, code, k, s, p, ceil_mode, window_indices=True)
        flat = _flat_from_codes(code, x, k, s, p, ceil_mode)
        assert dx.tobytes() == ops.max_pool2d_backward(x, dy, flat, k, s, p, ceil_mode).tobytes()
        if dtype == np.float64 and not np.isnan(dy).any():
            np.testing.assert_array_equal(
                dx, ref.max_pool2d_backward(x, dy, code, k, s, p, ceil_mode, True))


def test_stray_2x2_codes_leave_the_window_at_plus_zero():
    """Codes 4 and up in the 2x2 kernels (vector steps, the overlapping or masked last step,
    the scalar rows) write +0 at all four inputs; codes 0-3 put dy at that input."""
    for w in (2, 6, 10, 34, 40):
        x = np.zeros((1, 1, 2, w), np.float32)
        ow = w // 2
        dy = np.arange(1, ow + 1, dtype=np.float32).reshape(1, 1, 1, ow)
        code = (np.arange(ow) % 6).astype(np.uint8).reshape(1, 1, 1, ow)  # 0-3, then 4 and 5
        dx = ops.max_pool2d_backward(x, dy, code, 2, 2, window_indices=True)
        expected = np.zeros((2, w), np.float32)
        for j in range(ow):
            c = j % 6
            if c < 4:
                expected[c // 2, 2 * j + c % 2] = j + 1
        assert dx.tobytes() == expected.reshape(x.shape).tobytes()


def test_filters_up_to_256_taps_take_codes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 20, 19))
    code = _both(x, 16, 3, 8, True, np.float64)
    assert code.max() > 200  # codes past 127 are read unsigned
    _both(rng.standard_normal((1, 1, 2, 300)), (1, 256), (1, 7), 0, False, np.float64)
    with raises_exactly(ValueError,
                        "filter must have at most 256 taps for window_indices=True; got 17x17"):
        ops.max_pool2d_forward(x, 17, 1, 8, window_indices=True)
    with raises_exactly(ValueError,
                        "filter must have at most 256 taps for window_indices=True; got 1x257"):
        ops.max_pool2d_forward(np.zeros((1, 1, 1, 300)), (1, 257), 1, 0, window_indices=True)


def test_window_indices_errors_name_their_argument():
    x = np.zeros((1, 1, 4, 4), np.float32)
    y, idx = ops.max_pool2d_forward(x, 2, 2)
    with raises_exactly(TypeError,
                        "indices must have dtype uint8 (window codes, window_indices=True); "
                        "got int64"):
        ops.max_pool2d_backward(x, y, idx, 2, 2, window_indices=True)
    with raises_exactly(TypeError,
                        "indices must have dtype uint8 (window codes, window_indices=True); "
                        "got int32"):
        ops.max_pool2d_backward(x, y, idx.astype(np.int32), 2, 2, window_indices=True)
    with raises_exactly(TypeError, "window_indices must be a bool; got str 'yes'"):
        ops.max_pool2d_forward(x, 2, 2, window_indices="yes")
    with raises_exactly(TypeError, "window_indices must be a bool; got NoneType None"):
        ops.max_pool2d_backward(x, y, idx, 2, 2, window_indices=None)
    # Without window_indices, uint8 indices are flat indices, widened as before.
    code = np.zeros(y.shape, np.uint8)
    dx = ops.max_pool2d_backward(x, np.ones_like(y), code, 2, 2)
    assert dx[0, 0, 0, 0] == 1.0 and dx.sum() == 1.0  # every window names input 0: only the first


def test_functional_max_pool_float64_gradient_through_codes():
    """The autograd uses codes on the CPU: its gradient matches finite differences, and is the
    flat-index backward's bit for bit."""
    rng = np.random.default_rng(4)
    for k, s, p, ceil_mode in [(3, 2, 1, True), (2, 2, 0, False), ((2, 3), (1, 2), (1, 1), False)]:
        x = rng.permutation(60).reshape(1, 2, 5, 6) * 0.1  # no near-ties
        xv = fc.Variable(x)
        y = fc.max_pool2d(xv, k, s, p, ceil_mode)
        g = rand(rng, *y.shape)
        grad = (y * g).sum().grad().get(xv)
        num = numerical_grad(lambda: float((ops.max_pool2d_forward(x, k, s, p, ceil_mode)[0] * g)
                                           .sum()), x)
        assert_grad(grad, num)
        _, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
        assert np.asarray(grad).tobytes() == ops.max_pool2d_backward(
            x, g, idx, k, s, p, ceil_mode).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_conv_pool_codes_match_flat_indices(dtype):
    rng = np.random.default_rng(9)
    for shape, geo in [((2, 3, 9, 8), {}), ((1, 2, 13, 40), {"padding": 1}),
                       ((2, 3, 10, 11), {"stride": 2, "dilation": (1, 2)})]:
        x = rand(rng, *shape, dtype=dtype)
        w = rand(rng, 4, shape[1], 3, 3, dtype=dtype)
        b = rand(rng, 4, dtype=dtype)
        y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)
        yc, code = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo, window_indices=True)
        assert code.dtype == np.uint8 and yc.tobytes() == y.tobytes()
        z_shape = ops.conv2d_forward(x, w, b, **geo).shape
        np.testing.assert_array_equal(code, ref.window_codes(idx, z_shape, 2, 2, 0))
        dy = rand(rng, *y.shape, dtype=dtype)
        flat = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, idx, **geo)
        codes = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, code, **geo,
                                                    window_indices=True)
        for a, c in zip(flat, codes):
            assert a.tobytes() == c.tobytes()
        # Stray codes (4 and up) add nothing, as a stray flat index does.
        bad = _stray(rng, code, 4)
        flat_bad = _flat_from_codes(bad, np.empty(z_shape), 2, 2, 0, False)
        got = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, bad, **geo, window_indices=True)
        want = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, flat_bad, **geo)
        for a, c in zip(want, got):
            assert a.tobytes() == c.tobytes()
    with raises_exactly(TypeError,
                        "indices must have dtype uint8 (window codes, window_indices=True); "
                        "got int64"):
        ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, idx, **geo, window_indices=True)


def test_backward_codes_with_over_256_taps_name_their_tap():
    """The forward refuses filters over 256 taps, but the backward takes codes for them: every
    code (0-255) then names a tap, which adds where it lies in the image."""
    x = np.zeros((1, 1, 1, 300), np.float64)
    dy = np.array([[[[2.0]]]])
    dx = ops.max_pool2d_backward(x, dy, np.array([[[[255]]]], np.uint8), (1, 300), 1, 0,
                                 window_indices=True)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 255] = 2.0
    assert dx.tobytes() == expected.tobytes()
    x = np.zeros((1, 1, 17, 17), np.float64)
    for code in (0, 16, 17, 200, 255):  # 17x17: row code // 17, column code % 17
        dx = ops.max_pool2d_backward(x, dy, np.full((1, 1, 1, 1), code, np.uint8), 17, 1, 0,
                                     window_indices=True)
        expected = np.zeros_like(x)
        expected[0, 0, code // 17, code % 17] = 2.0
        assert dx.tobytes() == expected.tobytes(), code
