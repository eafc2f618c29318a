"""2-D convolution (cross-correlation), NCHW, on im2col + GEMM over groups of samples, or on the
CPU as Winograd F(4x4, 3x3) / F(2x2, 3x3) for float32 3x3 stride-1 convolutions, as
fastconv.set_conv_algorithm decides (by default Winograd where both channel counts are >= 16).

Shapes: x (N, C, H, W), w (K, C, kh, kw), b (K,) or (1, K, 1, 1), y (N, K, OH, OW) with
OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1 (and likewise OW). stride, padding (zero padding
on each side) and dilation are each an int or an (h, w) pair. float32 or float64, C-contiguous;
x, w, b and dy share one dtype.

Limits: sizes are int64. A ValueError names the argument when H + 2*padding or the kernel's reach
dh*(kh-1) + 1 would not fit in int64, or when the input, weights, output or one sample's im2col
matrix (C*kh*kw x OH*OW) would hold 2**60 elements or more (its bytes would not fit). Every axis
of x and w must be at least 1.
"""
from __future__ import annotations

from ._args import backend, flag, pair

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_scratch_bytes",
]


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, relu=False):
    """y[n, k] = sum_c x[n, c] (*) w[k, c] + b[k]; y has shape (N, K, OH, OW).

    relu=True returns max(y, 0), fused: the ReLU runs on each group of samples while it is in
    cache instead of as a separate pass over the activation."""
    return backend(x).conv2d_forward(x, w, b, pair(stride, "stride"), pair(padding, "padding"),
                                      pair(dilation, "dilation"), flag(relu, "relu"))


def conv2d_backward(x, w, dy, stride=1, padding=0, dilation=1, need_dx=True, need_db=True,
                    relu_y=None):
    """Gradients of sum(y * dy): (dx or None, dw, db or None); dx like x, dw like w, db (K,).

    relu_y: the output of conv2d_forward(..., relu=True); dy is then the gradient with respect to
    that output, and the ReLU's mask (relu_y > 0) is applied inside the kernel.

    Deterministic: reruns are bitwise equal, and results are bitwise independent of the thread
    count.
    """
    return backend(x).conv2d_backward(x, w, dy, pair(stride, "stride"), pair(padding, "padding"),
                                      pair(dilation, "dilation"), flag(need_dx, "need_dx"),
                                      flag(need_db, "need_db"), relu_y)


def conv2d_scratch_bytes(x, w, stride=1, padding=0, dilation=1) -> int:
    """Bytes of scratch a forward or backward call on these arguments uses, all threads together:
    bounded by one group of samples per thread, not by the batch."""
    return backend(x).conv2d_scratch_bytes(x, w, pair(stride, "stride"), pair(padding, "padding"),
                                           pair(dilation, "dilation"))
