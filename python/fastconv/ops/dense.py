"""The dense layer (tutorial layout: x (N, In) @ w (In, Out) + b) and bias over channels.

All arrays share one float dtype, float32 or float64; any other dtype, integers and bools included,
is a TypeError naming the argument and its dtype: this layer does not cast.
"""
from __future__ import annotations

from ._args import backend, flag

__all__ = ["dense_forward", "dense_backward", "bias_add", "bias_grad"]


def dense_forward(x, w, b=None, relu=False):
    """y (N, Out) = x (N, In) @ w (In, Out) + b, b of shape (Out,) or (1, Out), or None.
    One GEMM: the output rows start as b and the GEMM accumulates onto them.

    relu=True returns max(y, 0), fused: on the CPU each tile of y is clamped right after its
    product, while it is in cache, instead of in a separate pass over the activation."""
    return backend(x).dense_forward(x, w, b, flag(relu, "relu"))


def dense_backward(x, w, dy, need_dx=True, need_db=True, relu_y=None):
    """(dx (N, In) = dy @ w^T or None, dw (In, Out) = x^T @ dy, db (Out,) = dy summed over rows or
    None). db sums each column in row order: the same bits for any thread count. need_dx and
    need_db are bools (True/False or numpy bools); anything else is a TypeError.

    relu_y: the output of dense_forward(..., relu=True); dy is then the gradient with respect to
    that output, and the ReLU's mask (relu_y > 0) is applied once before the three products."""
    return backend(x).dense_backward(x, w, dy, flag(need_dx, "need_dx"), flag(need_db, "need_db"),
                                     relu_y)


def bias_add(x, b):
    """x (N, C, ...) + b broadcast over axis 1; b holds exactly C elements (any shape)."""
    return backend(x).bias_add(x, b)


def bias_grad(dy):
    """db (C,) = dy (N, C, ...) summed over every axis but 1, in a fixed order."""
    return backend(dy, "dy").bias_grad(dy)
