"""Reference 2-D pooling in plain numpy, written from the definitions (independently of the C++
geometry), looping over kernel taps and vectorised over the batch, channels and outputs.

A window of output o along an axis starts at o * stride - padding and spans `filter` positions.
Positions in [-padding, size + padding) are the padded image; beyond that is ceil-mode overhang.

Max pooling's indices: flat h * W + w in the plane, or with window_indices=True the uint8 window
code di * kw + dj of the tap (di, dj) counted from the window's start (window_codes converts).
"""
import numpy as np

from ..ops._args import pair

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "window_codes",
    "average_pool2d_forward",
    "average_pool2d_backward",
]


def _out_size(size, k, s, p, ceil_mode):
    span = size + 2 * p - k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    # The last window must start inside the image or its left padding.
    while out > 1 and (out - 1) * s - p >= size:
        out -= 1
    return out


def _geometry(x, filter, stride, padding, ceil_mode):
    (kh, kw), (sh, sw), (ph, pw) = pair(filter, "filter"), pair(stride, "stride"), pair(
        padding, "padding")
    h, w = np.shape(x)[2:]
    oh, ow = _out_size(h, kh, sh, ph, ceil_mode), _out_size(w, kw, sw, pw, ceil_mode)
    return kh, kw, sh, sw, ph, pw, oh, ow


def _taps(kh, kw, sh, sw, ph, pw, oh, ow):
    """For each tap (i, j) in raster order: the input rows and columns it reads, (oh,), (ow,)."""
    for i in range(kh):
        for j in range(kw):
            yield np.arange(oh) * sh - ph + i, np.arange(ow) * sw - pw + j


def _plane_lookup(x, rows, cols):
    """x[:, :, rows, cols] as an (N, C, oh, ow) grid, and where (rows, cols) lies in the image."""
    h, w = x.shape[2:]
    rin, cin = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    v = x[:, :, np.clip(rows, 0, h - 1)][:, :, :, np.clip(cols, 0, w - 1)]
    return v, rin[:, None] & cin[None, :]


def _window_starts(kh, kw, sh, sw, ph, pw, oh, ow):
    """Each output's window's first row (oh, 1) and column (1, ow), in image coordinates."""
    return (np.arange(oh) * sh - ph)[:, None], (np.arange(ow) * sw - pw)[None, :]


def window_codes(indices, x, filter=3, stride=1, padding=0, ceil_mode=False):
    """The uint8 window codes di * kw + dj of flat indices (N, C, OH, OW) into x's planes (x or
    its shape gives the geometry): the indexed input's row and column minus its window's first
    row and column. The indices must lie in their windows."""
    shape = tuple(x) if isinstance(x, (tuple, list)) else np.shape(x)
    kh, kw, sh, sw, ph, pw, oh, ow = _geometry(np.empty(shape, bool), filter, stride, padding,
                                               ceil_mode)
    w = shape[3]
    r0, c0 = _window_starts(kh, kw, sh, sw, ph, pw, oh, ow)
    indices = np.asarray(indices, np.int64)
    di, dj = indices // w - r0, indices % w - c0
    assert ((di >= 0) & (di < kh) & (dj >= 0) & (dj < kw)).all(), "an index outside its window"
    return (di * kw + dj).astype(np.uint8)


def max_pool2d_forward(x, filter=3, stride=1, padding=0, ceil_mode=False, window_indices=False):
    """(y (N, C, OH, OW), indices (N, C, OH, OW)): each window's maximum of x (N, C, H, W)
    and its flat index h * W + w in the plane (window_indices: its uint8 window code); the first
    maximum wins, NaN beats any number."""
    kh, kw, sh, sw, ph, pw, oh, ow = _geometry(x, filter, stride, padding, ceil_mode)
    n, c, h, w = x.shape
    best = np.zeros((n, c, oh, ow), dtype=x.dtype)
    index = np.full((n, c, oh, ow), -1, dtype=np.int64)
    for rows, cols in _taps(kh, kw, sh, sw, ph, pw, oh, ow):
        v, inside = _plane_lookup(x, rows, cols)
        first = index < 0
        # Strictly greater keeps the first maximum; the first NaN wins and nothing beats it.
        gt = (v > best) | (np.isnan(v) & ~np.isnan(best))
        take = inside & (first | gt)
        best = np.where(take, v, best)
        index = np.where(take, (rows[:, None] * w + cols[None, :]), index)
    if window_indices:
        return best, window_codes(index, x, filter, stride, padding, ceil_mode)
    return best, index


def max_pool2d_backward(x, dy, indices, filter=3, stride=1, padding=0, ceil_mode=False,
                        window_indices=False):
    """dx (N, C, H, W): each dy element added at the input position its indices entry names.
    Window codes name (di, dj) = divmod(code, kw) from the window's start; a code past the
    filter's taps or on the padding names nothing and adds nothing."""
    n, c, h, w = x.shape
    dy = np.asarray(dy, np.float64)
    if window_indices:
        kh, kw, sh, sw, ph, pw, oh, ow = _geometry(x, filter, stride, padding, ceil_mode)
        code = np.asarray(indices).astype(np.int64)
        r0, c0 = _window_starts(kh, kw, sh, sw, ph, pw, oh, ow)
        r, col = r0 + code // kw, c0 + code % kw
        named = (code < kh * kw) & (r >= 0) & (r < h) & (col >= 0) & (col < w)
        indices = np.where(named, r * w + col, 0)
        dy = np.where(named, dy, 0.0)
    dx = np.zeros((n * c, h * w), dtype=np.float64)
    plane = np.arange(n * c)[:, None]
    np.add.at(dx, (plane, np.asarray(indices).reshape(n * c, -1)), dy.reshape(n * c, -1))
    return dx.reshape(x.shape).astype(x.dtype)


def _divisors(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad):
    h, w = x.shape[2:]
    div = np.zeros((oh, ow))
    for rows, cols in _taps(kh, kw, sh, sw, ph, pw, oh, ow):
        if count_include_pad:  # the padded image counts; overhang beyond it does not
            r, q = (rows >= -ph) & (rows < h + ph), (cols >= -pw) & (cols < w + pw)
        else:
            r, q = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        div += r[:, None] & q[None, :]
    return div


def average_pool2d_forward(x, filter=3, stride=1, padding=0, ceil_mode=False,
                           count_include_pad=True):
    """y (N, C, OH, OW): each window's mean over x (N, C, H, W); padding counts in the divisor
    when count_include_pad, ceil-mode overhang never does."""
    g = _geometry(x, filter, stride, padding, ceil_mode)
    n, c = x.shape[:2]
    total = np.zeros((n, c) + g[-2:])
    for rows, cols in _taps(*g):
        v, inside = _plane_lookup(x, rows, cols)
        total += np.where(inside, v, 0.0)
    return (total / _divisors(x, *g, count_include_pad)).astype(x.dtype)


def average_pool2d_backward(x, dy, filter=3, stride=1, padding=0, ceil_mode=False,
                            count_include_pad=True):
    """dx (N, C, H, W): each dy element shared equally among its window's inputs, with the
    forward pass's divisors."""
    g = _geometry(x, filter, stride, padding, ceil_mode)
    n, c, h, w = x.shape
    share = dy.astype(np.float64) / _divisors(x, *g, count_include_pad)
    dx = np.zeros((n, c, h, w))
    for rows, cols in _taps(*g):
        r, q = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        # Within one tap the outputs read distinct inputs, so plain indexed += is exact.
        dx[:, :, rows[r][:, None], cols[q][None, :]] += share[:, :, r][:, :, :, q]
    return dx.astype(x.dtype)
