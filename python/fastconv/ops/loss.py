"""Softmax cross-entropy, fused: the loss from logits in logsumexp form, and its gradient.

Logits are float32 or float64 (no casting: other dtypes are a TypeError naming z and its dtype).
"""
from __future__ import annotations

import numpy as np

from ._args import backend

__all__ = [
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward_backward",
]


def _targets(t):
    # (N,) labels of any integer width may be strided views; the binding range-checks them in
    # their own dtype (a uint64 2**63 + 1 stays itself) before converting to int64. Everything
    # else goes down as it is, for the binding to check and name.
    if isinstance(t, np.ndarray) and t.ndim == 1 and t.dtype.kind in "iu":
        return np.ascontiguousarray(t)
    return t


def softmax_cross_entropy_forward(z, t):
    """Mean over the batch of -log softmax(z)[target], as a 0-d array of z's dtype.

    z: logits (N, C), float32 or float64. t: (N, C) target weights of z's dtype, or (N,) integer
    labels (any integer dtype) in [0, C). Target weights are one-hot rows or any finite weights
    >= 0; rows need not sum to 1 (a row's loss scales with its sum, and an all-zero row adds 0).
    A negative or non-finite weight is a ValueError that gives its value, row and column, and so
    is a label outside [0, C); on the GPU the kernel finds it without stopping the host, and it is
    raised at the next wait for the device (fastconv.synchronize(), a copy to the host).
    Each row is computed as sum_c t_c * ((max z - z_c) + log sum exp(z - max z)): finite and
    exact for logits of any magnitude. Rows are summed in order, so the result does not depend
    on the thread count.
    """
    return backend(z, "z").softmax_cross_entropy_forward(z, _targets(t))


def softmax_cross_entropy_backward(z, t, dloss=1.0):
    """dz (N, C) = (sum_c t_c * softmax(z) - t) * dloss / N; for labels or one-hot rows,
    (softmax(z) - onehot) * dloss / N. dloss is a finite real number (not a bool)."""
    return backend(z, "z").softmax_cross_entropy_backward(z, _targets(t), dloss)


def softmax_cross_entropy_forward_backward(z, t, dloss=1.0):
    """(loss, dz): both of the above, bitwise, from one call. On the GPU one kernel computes them
    from a single read of z (each row's max and sum of exponentials found once), which is what a
    training step wants; the CPU runs its two kernels."""
    return backend(z, "z").softmax_cross_entropy_forward_backward(z, _targets(t), dloss)
