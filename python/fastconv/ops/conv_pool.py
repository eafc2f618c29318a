"""2-D convolution + bias + ReLU + 2x2 stride-2 max pooling (no padding, floor) as one op, on
the CPU (numpy arrays) only. The convolution's full-size output z stays in the kernel's scratch:
it is not an array the caller keeps from the forward to the backward, and the backward hands the
convolution's backward its gradient already through the ReLU's mask (no pass over z).

Shapes: x (N, C, H, W), w (K, C, kh, kw), b (K,) or (1, K, 1, 1) or None; the convolution's
output z (N, K, OH, OW) as in conv2d_forward (OH, OW >= 2); y, dy and indices
(N, K, OH // 2, OW // 2): an odd last row or column of z is not pooled. stride, padding and
dilation are the convolution's, each an int or an (h, w) pair. float32 or float64, C-contiguous.
"""
from __future__ import annotations

from .._native import C
from ._args import backend, flag, pair

__all__ = [
    "conv2d_relu_max_pool2d_forward",
    "conv2d_relu_max_pool2d_backward",
]


def _cpu(x):
    """The CPU module for numpy x; a DeviceArray is refused (there is no GPU kernel: compose
    conv2d_forward(..., relu=True) and max_pool2d_forward there)."""
    module = backend(x)
    if module is not C:
        raise TypeError("x must be a numpy array (conv2d_relu_max_pool2d runs on the CPU only; on "
                        "the GPU use conv2d_forward(relu=True) then max_pool2d_forward); got "
                        f"{type(x).__name__}")
    return module


def conv2d_relu_max_pool2d_forward(x, w, b=None, stride=1, padding=0, dilation=1,
                                   window_indices=False):
    """(y, indices) = max_pool2d_forward(conv2d_forward(x, w, b, stride, padding, dilation,
    relu=True), filter=2, stride=2, window_indices=window_indices), bitwise, with the same
    indices (int64 h * OW + w in each (n, k) plane of z, or with window_indices=True uint8
    window codes 0-3: 0, 1 on the window's top row, 2, 3 below; first maximum on ties, the first
    NaN where a window holds one), for conv2d_relu_max_pool2d_backward or max_pool2d_backward."""
    return _cpu(x).conv2d_relu_max_pool2d_forward(
        x, w, b, pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation"),
        flag(window_indices, "window_indices"))


def conv2d_relu_max_pool2d_backward(x, w, dy, y, indices, stride=1, padding=0, dilation=1,
                                    need_dx=True, need_db=True, window_indices=False):
    """Gradients of sum(y * dy): (dx or None, dw, db or None), bitwise those of the unfused
    chain (max_pool2d_backward, then conv2d_backward with the ReLU's mask). y and indices are
    the forward's outputs: dy reaches z at each window's index where y > 0 (the ReLU's mask
    there), +0 elsewhere. indices in the forward's form (window_indices: uint8 codes, else flat;
    see max_pool2d_backward). Deterministic, and bitwise independent of the thread count."""
    return _cpu(x).conv2d_relu_max_pool2d_backward(
        x, w, dy, y, indices, pair(stride, "stride"), pair(padding, "padding"),
        pair(dilation, "dilation"), flag(need_dx, "need_dx"), flag(need_db, "need_db"),
        flag(window_indices, "window_indices"))
