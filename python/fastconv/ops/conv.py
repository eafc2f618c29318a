"""2-D convolution (cross-correlation), NCHW, on im2col + GEMM over chunks of the batch.

Shapes: x (N, C, H, W), w (K, C, kh, kw), b (K,) or (1, K, 1, 1), y (N, K, OH, OW) with
OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1 (and likewise OW). stride, padding (zero padding
on each side) and dilation are each an int or an (h, w) pair. float32 or float64, C-contiguous;
x, w, b and dy share one dtype.
"""
from __future__ import annotations

from .._native import C
from ._args import backend, pair

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_scratch_bytes",
    "set_conv_workspace_limit",
    "get_conv_workspace_limit",
]


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """y[n, k] = sum_c x[n, c] (*) w[k, c] + b[k]; y has shape (N, K, OH, OW)."""
    return backend(x).conv2d_forward(x, w, b, pair(stride, "stride"), pair(padding, "padding"),
                                      pair(dilation, "dilation"))


def conv2d_backward(x, w, dy, stride=1, padding=0, dilation=1, need_dx=True, need_db=True):
    """Gradients of sum(y * dy): (dx or None, dw, db or None); dx like x, dw like w, db (K,).

    Deterministic: reruns are bitwise equal, and so are results under any workspace limit;
    float32 results are also bitwise independent of the thread count (float64 GEMMs in
    OpenBLAS may differ in the last bit between thread counts).
    """
    return backend(x).conv2d_backward(x, w, dy, pair(stride, "stride"), pair(padding, "padding"),
                                      pair(dilation, "dilation"), bool(need_dx), bool(need_db))


def conv2d_scratch_bytes(x, w, stride=1, padding=0, dilation=1) -> int:
    """Bytes of scratch one forward or backward call on these arguments uses (one chunk's)."""
    return backend(x).conv2d_scratch_bytes(x, w, pair(stride, "stride"), pair(padding, "padding"),
                                           pair(dilation, "dilation"))


def set_conv_workspace_limit(nbytes: int) -> None:
    """Bound one chunk's scratch to nbytes (default 16 MiB); a chunk holds at least one sample."""
    C.set_conv_workspace_limit(nbytes)


def get_conv_workspace_limit() -> int:
    return C.get_conv_workspace_limit()
