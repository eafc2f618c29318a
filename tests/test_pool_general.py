"""Max pooling's general windows (cpu/pool_rows.h: each input row's window maxima once, then the
window rows combined in order; output columns whose windows are whole run vectorised, the ones
touching padding or the edge run the scalar loop), pinned bit for bit: the indices equal the
reference's, each output is the bits of the input its index names, and the backward equals the
same additions (from +0, outputs in raster order) done in numpy in the same dtype."""
import zlib

import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES

# (filter, stride, padding): windows 3 and 5 and non-square, strides 1, 2 and 3 (stride 1 and 2
# are compiled with a constant stride, the rest with the run-time one), with and without padding.
GEOMETRIES = [
    (3, 1, 1), (3, 2, 1), (3, 3, 1), (3, 2, 0), (3, 1, 0),
    (5, 1, 2), (5, 2, 2), (5, 3, 0), ((3, 5), (2, 3), (1, 2)), ((5, 3), (1, 2), (2, 0)),
    (2, 3, 1),  # stride above the window: rows and columns no window reads
]
# Widths from under one window of whole columns through several AVX-512 vectors of output
# columns (16 floats, 8 doubles), odd and even.
WIDTHS = [3, 4, 5, 6, 7, 9, 12, 17, 18, 20, 33, 34, 35, 41, 56, 67]


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _values(rng, shape, dtype):
    """Few distinct values (ties everywhere), both zeros, infinities and NaNs with payloads."""
    pool = np.array([-1.0, -0.0, 0.0, 1.0, 2.0, np.inf, -np.inf, np.nan, np.nan], dtype)
    b = _bits(pool)
    if dtype == np.float32:
        b[7], b[8] = 0x7FC12345, 0xFFC00007
    else:
        b[7], b[8] = 0x7FF8000000012345, 0xFFF8000000000007
    x = pool[rng.integers(0, pool.size, size=shape)]
    x[rng.random(shape) < 0.3] = dtype(rng.standard_normal())  # one more tie value
    spread = rng.random(shape) < 0.4
    x[spread] = rng.standard_normal(spread.sum()).astype(dtype)
    return x


def _expected_dx(x, dy, idx, k, s, p):
    """dy added at each in-window index, outputs in raster order, from +0, in x's dtype."""
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    n, c, h, w = x.shape
    oh, ow = idx.shape[2:]
    r0 = np.arange(oh)[:, None] * sh - ph
    c0 = np.arange(ow)[None, :] * sw - pw
    at = idx.reshape(n * c, oh, ow)
    row, col = np.floor_divide(at, w), np.mod(at, w)
    inside = ((at >= 0) & (row >= np.maximum(r0, 0)) & (row < np.minimum(r0 + kh, h))
              & (col >= np.maximum(c0, 0)) & (col < np.minimum(c0 + kw, w)))
    dx = np.zeros((n * c, h * w), x.dtype)
    plane = np.broadcast_to(np.arange(n * c)[:, None, None], at.shape)
    np.add.at(dx, (plane[inside], at[inside]), dy.reshape(at.shape)[inside])
    return dx.reshape(x.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("k,s,p", GEOMETRIES, ids=[str(g).replace(" ", "") for g in GEOMETRIES])
def test_general_max_pool_bitwise(k, s, p, ceil_mode, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{k}{s}{p}{ceil_mode}".encode()))
    for w in WIDTHS:
        kh, kw = (k, k) if isinstance(k, int) else k
        if w < kw:
            continue
        x = _values(rng, (2, 3, 7 + w % 5, w), dtype)
        y, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
        _, idx_ref = ref.max_pool2d_forward(x, k, s, p, ceil_mode)
        np.testing.assert_array_equal(idx, idx_ref, err_msg=f"width {w}")
        gathered = np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), axis=2)
        assert y.tobytes() == gathered.reshape(y.shape).tobytes(), f"width {w}"
        dy = rng.standard_normal(y.shape).astype(dtype)
        dy[rng.random(dy.shape) < 0.2] = -0.0
        dy.flat[0] = np.nan
        dx = ops.max_pool2d_backward(x, dy, idx, k, s, p, ceil_mode)
        assert dx.tobytes() == _expected_dx(x, dy, idx, k, s, p).tobytes(), f"width {w}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (5, 1, 2), ((3, 5), (2, 3), (1, 2))])
def test_general_max_pool_backward_stray_indices_bitwise(k, s, p, dtype):
    """Indices from another window, negative or far past the plane add nothing, and an output
    whose index names nothing leaves every input (the plane's first included) bit for bit as the
    others' sums make it: no -0 becomes +0, no NaN changes."""
    rng = np.random.default_rng(7)
    x = _values(rng, (2, 2, 11, 37), dtype)
    y, idx = ops.max_pool2d_forward(x, k, s, p)
    idx = idx.copy()
    flat = idx.reshape(-1)
    bad = rng.random(flat.size) < 0.3
    flat[bad] = rng.choice([-1, 0, 5, 38, 71, 2**62, -2**63, 2**63 - 1], size=bad.sum())
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy[rng.random(dy.shape) < 0.3] = -0.0
    dy.flat[3] = np.nan
    dx = ops.max_pool2d_backward(x, dy, idx, k, s, p)
    assert dx.tobytes() == _expected_dx(x, dy, idx, k, s, p).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h", [1, 2, 3, 4, 5, 6])
def test_general_max_pool_planes_shorter_than_the_window(h, dtype):
    """Window rows are kept in a ring of min(window height, plane height) rows: planes shorter
    than the 5-row window (a ring of the whole plane), as tall, and taller, bitwise."""
    rng = np.random.default_rng(h)
    for k, s, p, ceil_mode in [(5, 1, 2, False), (5, 2, 2, True), ((5, 3), (1, 2), (2, 1), True)]:
        x = _values(rng, (2, 3, h, 23), dtype)
        y, idx = ops.max_pool2d_forward(x, k, s, p, ceil_mode)
        _, idx_ref = ref.max_pool2d_forward(x, k, s, p, ceil_mode)
        np.testing.assert_array_equal(idx, idx_ref)
        gathered = np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), axis=2)
        assert y.tobytes() == gathered.reshape(y.shape).tobytes()
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = ops.max_pool2d_backward(x, dy, idx, k, s, p, ceil_mode)
        assert dx.tobytes() == _expected_dx(x, dy, idx, k, s, p).tobytes()


def test_general_max_pool_benchmark_shape_matches_reference():
    """The benchmark's 3x3 stride-2 padding-1 geometry on a 56x56 plane, random data."""
    rng = np.random.default_rng(56)
    x = rng.standard_normal((2, 5, 56, 56)).astype(np.float32)
    y, idx = ops.max_pool2d_forward(x, 3, 2, 1)
    y_ref, idx_ref = ref.max_pool2d_forward(x.astype(np.float64), 3, 2, 1)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
