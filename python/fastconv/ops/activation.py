"""Elementwise activations: relu and dropout.

Inputs are float32 or float64 numpy arrays (or DeviceArrays); any other dtype, integers and bools
included, is a TypeError naming the argument and its dtype: this layer does not cast.
"""
from __future__ import annotations

import numpy as np

from .._native import C
from ._args import backend

__all__ = ["relu_forward", "relu_backward", "dropout_forward", "dropout_backward", "dropout_mask"]


def relu_forward(x):
    """y = max(x, 0), any shape; NaN passes through."""
    return backend(x).relu_forward(x)


def relu_backward(dy, y):
    """dx = dy where the forward output y > 0, else 0."""
    return backend(dy, "dy").relu_backward(dy, y)


def dropout_forward(x, ratio, seed):
    """Inverted dropout, any shape: y = x / (1 - ratio) where kept, exactly 0 where dropped.

    Element i (flat, C order) is kept iff uniform(seed, i) >= ratio, with uniform a counter-based
    hash of (seed, i) (fastconv/rng.h), so the mask depends on nothing else: not on the thread
    count, the backend or earlier calls. ratio in [0, 1) (0 is the identity); seed an int in
    [0, 2**64). Nothing is stored: backward recomputes the mask from the same (ratio, seed).

    On the GPU, seed may instead be a one-element int64 device array (0-d, such as row i of a 1-D
    array, or shape (1,)): the kernel reads the seed from device memory when it runs, so a launch
    captured in a CUDA graph draws the mask of whatever value the host wrote there before each
    replay. Its int64 bits are taken as the uint64 seed as they are (-1 is seed 2**64 - 1; no
    value is refused), and the mask equals the one of that int seed bit for bit. The CPU takes
    int seeds only.
    """
    return backend(x).dropout_forward(x, ratio, seed)


def dropout_backward(dy, ratio, seed):
    """dx = dy * mask / (1 - ratio), the mask recomputed from (ratio, seed) as in forward (seed
    an int, or on the GPU a one-element int64 device array, as there)."""
    return backend(dy, "dy").dropout_backward(dy, ratio, seed)


def dropout_mask(shape, ratio, seed, dtype=np.float32):
    """The scaled mask dropout_forward multiplies by: 1/(1-ratio) where kept, 0 where dropped.

    seed is an int (a device array is not taken here). shape is an int or a tuple of ints, each
    in [0, 2**63), with fewer than 2**63 elements in all; dtype float32 or float64. A numpy (CPU)
    array; one too large to allocate is a MemoryError that gives the bytes asked for.
    """
    return C.dropout_mask(shape, ratio, seed, dtype)
