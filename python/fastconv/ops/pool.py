"""2-D max and average pooling over NCHW arrays, forward and backward.

Shapes: x (N, C, H, W); y, dy and indices (N, C, OH, OW) with OH, OW from the shared geometry
(floor by default; with ceil_mode a partial last window is kept when it starts inside the image or
its left padding). filter, stride and padding take an int or an (h, w) pair; padding is at most
half the filter. The bindings validate every argument and raise TypeError/ValueError naming it:
every axis of x must be at least 1, sizes are int64, H + 2*padding must fit in int64, and the
output must hold fewer than 2**60 elements. The average's divisor is formed in float64, so
windows of any size give the true mean (it is exact up to 2**53 positions).

Max pooling's indices come in two forms. By default (window_indices=False) int64 flat indices
h * W + w into each (n, c) plane, as PyTorch's. With window_indices=True (CPU only) uint8 window
codes, di * kw + dj: the winner's row di and column dj inside its window, counted from the
window's top-left corner in padded coordinates (input row oh * sh - ph + di, column
ow * sw - pw + dj); a filter may then have at most 256 taps. A code is an eighth of an index's
memory, which the memory-bound backward reads: the autograd (fastconv.functional) uses them on
the CPU. Both forms give the same y and, in the backward, the same dx bit for bit.
"""
from __future__ import annotations

from ._args import backend, flag, pair

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "average_pool2d_forward",
    "average_pool2d_backward",
]


def max_pool2d_forward(x, filter=3, stride=1, padding=0, ceil_mode=False,
                       window_indices=False):
    """(y, indices): the window maxima and, as int64, each one's flat index h * W + w in its
    (n, c) plane, or with window_indices=True (CPU only; at most 256 filter taps) as uint8 its
    window code di * kw + dj (see the module's notes). Padding never wins (as if -inf); ties keep
    the first maximum in raster order; a window holding NaN gives NaN and the index of its first
    NaN."""
    return backend(x).max_pool2d_forward(
        x, pair(filter, "filter"), pair(stride, "stride"), pair(padding, "padding"),
        flag(ceil_mode, "ceil_mode"), flag(window_indices, "window_indices"))


def max_pool2d_backward(x, dy, indices, filter=3, stride=1, padding=0, ceil_mode=False,
                        window_indices=False):
    """dx (N, C, H, W), x's dtype: each input element receives the sum of dy over the outputs
    whose index points at it (x gives only the shape and dtype). Deterministic: a gather.
    indices is the forward's form: flat (window_indices=False; any integer dtype, widened to
    int64) or uint8 window codes (True, CPU only). An index naming no input of its window (a
    flat index outside it; a code past the filter's taps or on the padding) adds nothing."""
    return backend(x).max_pool2d_backward(
        x, dy, indices, pair(filter, "filter"), pair(stride, "stride"), pair(padding, "padding"),
        flag(ceil_mode, "ceil_mode"), flag(window_indices, "window_indices"))


def average_pool2d_forward(x, filter=3, stride=1, padding=0, ceil_mode=False,
                           count_include_pad=True):
    """y (N, C, OH, OW): window sums over the image divided by the window's extent within the
    padded image (count_include_pad=True: padded zeros count) or by its element count within the
    image (False). Ceil-mode overhang past the padding never counts."""
    return backend(x).average_pool2d_forward(
        x, pair(filter, "filter"), pair(stride, "stride"), pair(padding, "padding"),
        flag(ceil_mode, "ceil_mode"), flag(count_include_pad, "count_include_pad"))


def average_pool2d_backward(x, dy, filter=3, stride=1, padding=0, ceil_mode=False,
                            count_include_pad=True):
    """dx (N, C, H, W): each input element gathers dy / divisor (the forward's divisor) over the
    outputs whose windows contain it. x gives only the shape and dtype."""
    return backend(x).average_pool2d_backward(
        x, dy, pair(filter, "filter"), pair(stride, "stride"), pair(padding, "padding"),
        flag(ceil_mode, "ceil_mode"), flag(count_include_pad, "count_include_pad"))
