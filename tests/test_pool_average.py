"""Average pooling's general windows (csrc/cpu/avg_pool_rows.h), bit for bit.

The vectorised loops must make the same additions in the same order as the per-element loops
they replaced, so the sums are written out here in that order, in numpy (one IEEE operation per
step, in the input's dtype): each window-row sum from +0 left to right, the column sum from the
window's first row sum down, then the division; the backward's g = dy / divisor, each input row's
v from +0 over its output rows in order, each input from +0 over its output columns in order.
Shapes put whole windows, clipped windows, ceil-mode overhang and row lengths around the vector
widths through both the fast loops and the edges. A NaN may differ in sign or payload (an
addition's operands may be swapped), so NaNs are compared as NaN, everything else by its bits.
"""
import numpy as np
import pytest

import fastconv.ops as ops
from fastconv.reference.pool import _out_size


def _windows(size, out, k, s, p, count_include_pad):
    """Per output: [begin, end) clipped to the image, and the divisor's extent (geometry.h)."""
    res = []
    for o in range(out):
        start = o * s - p
        begin, end = max(start, 0), start + min(k, size - start)
        res.append((begin, end, min(k, size + p - start) if count_include_pad else end - begin))
    return res


def _readers(size, out, k, s, p):
    """Per input: the outputs [first, last) whose windows hold it."""
    res = []
    for i in range(size):
        lo = i + p - k + 1
        first = 0 if lo <= 0 else -(-lo // s)
        last = min(out, (i + p) // s + 1)
        res.append((first, max(first, last)))
    return res


def _geometry(x, k, s, p, ceil_mode, cip):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    h, w = x.shape[2:]
    oh, ow = _out_size(h, kh, sh, ph, ceil_mode), _out_size(w, kw, sw, pw, ceil_mode)
    return (_windows(h, oh, kh, sh, ph, cip), _windows(w, ow, kw, sw, pw, cip),
            _readers(h, oh, kh, sh, ph), _readers(w, ow, kw, sw, pw))


def _divisors(rows, cols, dtype):
    div = [[float(re) * float(ce) for _, _, ce in cols] for _, _, re in rows]
    return np.array(div).astype(dtype)


def _forward_in_order(x, k, s, p, ceil_mode, cip):
    rows, cols, _, _ = _geometry(x, k, s, p, ceil_mode, cip)
    zero = np.zeros(x.shape[:3], x.dtype)
    hs = np.stack([_sum_from_zero(zero, [x[..., c] for c in range(b, e)]) for b, e, _ in cols],
                  axis=-1) if cols else np.zeros(x.shape[:3] + (0,), x.dtype)
    out = []
    for b, e, _ in rows:
        acc = hs[:, :, b].copy()
        for r in range(b + 1, e):
            acc = acc + hs[:, :, r]
        out.append(acc)
    y = np.stack(out, axis=2) if rows else np.zeros(x.shape[:2] + (0, len(cols)), x.dtype)
    return y / _divisors(rows, cols, x.dtype)


def _sum_from_zero(zero, terms):
    acc = zero.copy()
    for t in terms:
        acc = acc + t
    return acc


def _backward_in_order(x, dy, k, s, p, ceil_mode, cip):
    rows, cols, rread, cread = _geometry(x, k, s, p, ceil_mode, cip)
    g = dy / _divisors(rows, cols, x.dtype)
    zero_row = np.zeros(dy.shape[:2] + (dy.shape[3],), x.dtype)
    dx = np.empty_like(x)
    zero = np.zeros(x.shape[:2], x.dtype)
    for ih, (f, l) in enumerate(rread):
        v = _sum_from_zero(zero_row, [g[:, :, oi] for oi in range(f, l)])
        for iw, (cf, cl) in enumerate(cread):
            dx[:, :, ih, iw] = _sum_from_zero(zero, [v[:, :, oj] for oj in range(cf, cl)])
    return dx


def _assert_same_bits(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    bits = got.dtype.str.replace("f", "u")
    np.testing.assert_array_equal(got[~nan].view(bits), want[~nan].view(bits))


def _special(rng, x):
    """Sprinkle -0, +-inf and NaN over x (about one element in eight)."""
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=max(1, flat.size // 8), replace=False)
    flat[idx] = rng.choice(np.array([-0.0, 0.0, np.inf, -np.inf, np.nan], x.dtype), size=idx.size)
    return x


# (shape, filter, stride, padding): windows 2/3/5, strides 1/2/3 and mixed, padding on one or both
# axes, odd sizes, rows a whole number of strides wide (the flat pass) or not, rows of 15-70
# columns (outputs on both sides of 8 and 16 lanes), batch 1.
CASES = [
    ((2, 3, 56, 56), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 9, 33), (3, 3), (2, 2), (1, 1)),
    ((1, 1, 7, 34), (3, 3), (2, 2), (1, 1)),
    ((2, 2, 11, 17), (3, 3), (1, 1), (1, 1)),
    ((1, 3, 13, 70), (5, 5), (2, 2), (2, 2)),
    ((1, 2, 10, 31), (5, 3), (3, 3), (2, 1)),
    ((1, 2, 9, 40), (2, 2), (1, 1), (0, 0)),
    ((1, 2, 9, 41), (2, 2), (2, 2), (1, 1)),
    ((1, 1, 8, 50), (3, 2), (2, 3), (1, 0)),
    ((1, 2, 6, 19), (2, 5), (1, 2), (1, 2)),
    ((1, 1, 12, 64), (2, 2), (3, 3), (0, 1)),
    ((1, 1, 5, 15), (5, 5), (1, 1), (2, 2)),
    ((1, 2, 8, 30), (5, 5), (3, 3), (2, 2)),
    ((2, 1, 7, 33), (3, 3), (3, 3), (1, 1)),
    ((1, 1, 300, 64), (3, 3), (2, 2), (1, 1)),  # the backward's flat pass in two blocks of rows
    ((1, 1, 4, 4), (3, 3), (2, 2), (1, 1)),
    ((1, 1, 3, 2), (3, 3), (2, 2), (1, 1)),
]
IDS = ["{}-k{}-s{}-p{}".format(*c).replace(" ", "") for c in CASES]


@pytest.mark.parametrize("special", [False, True], ids=["finite", "special"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cip", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_average_pool_bits_match_the_scalar_order(shape, k, s, p, ceil_mode, cip, dtype, special):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype) * dtype(3)
    if special:
        x = _special(rng, x)
    y = ops.average_pool2d_forward(x, k, s, p, ceil_mode, cip)
    with np.errstate(all="ignore"):  # inf - inf on purpose
        want = _forward_in_order(x, k, s, p, ceil_mode, cip)
    _assert_same_bits(y, want)
    dy = rng.standard_normal(y.shape).astype(dtype)
    if special:
        dy = _special(rng, dy)
    dx = ops.average_pool2d_backward(x, dy, k, s, p, ceil_mode, cip)
    with np.errstate(all="ignore"):
        want = _backward_in_order(x, dy, k, s, p, ceil_mode, cip)
    _assert_same_bits(dx, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_average_pool_signed_zeros(dtype):
    """All -0 inputs: every sum starts at +0, so every output and gradient is +0, never -0."""
    x = np.full((1, 2, 9, 37), -0.0, dtype)
    y = ops.average_pool2d_forward(x, 3, 2, 1, False, True)
    dx = ops.average_pool2d_backward(x, np.full(y.shape, -0.0, dtype), 3, 2, 1, False, True)
    assert not np.signbit(y).any() and not np.signbit(dx).any()
