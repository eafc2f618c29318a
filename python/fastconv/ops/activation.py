"""Elementwise activations: relu (and dropout)."""
from __future__ import annotations

from ._args import backend

__all__ = ["relu_forward", "relu_backward"]


def relu_forward(x):
    """y = max(x, 0), any shape; NaN passes through."""
    return backend(x).relu_forward(x)


def relu_backward(dy, y):
    """dx = dy where the forward output y > 0, else 0."""
    return backend(dy, "dy").relu_backward(dy, y)
