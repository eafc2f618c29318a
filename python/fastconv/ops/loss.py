"""Softmax cross-entropy, fused: the loss from logits in logsumexp form, and its gradient."""
from __future__ import annotations

import numpy as np

from ._args import backend

__all__ = ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward"]


def _targets(t):
    # (N,) labels of any integer dtype go down as int64; floats of shape (N,) stay as they are so
    # the binding rejects them (labels must be integers), and so does anything else it dislikes.
    if isinstance(t, np.ndarray) and t.ndim == 1 and t.dtype.kind in "iu":
        return np.ascontiguousarray(t, dtype=np.int64)
    return t


def softmax_cross_entropy_forward(z, t):
    """Mean over the batch of -log softmax(z)[target], as a 0-d array of z's dtype.

    z: logits (N, C), float32 or float64. t: (N, C) target weights of z's dtype (one-hot, or any
    non-negative weights), or (N,) integer labels in [0, C). Each row is computed as
    sum_c t_c * ((max z - z_c) + log sum exp(z - max z)): finite and exact for logits of any
    magnitude. Rows are summed in order, so the result does not depend on the thread count.
    """
    return backend(z, "z").softmax_cross_entropy_forward(z, _targets(t))


def softmax_cross_entropy_backward(z, t, dloss=1.0):
    """dz (N, C) = (sum_c t_c * softmax(z) - t) * dloss / N; for labels or one-hot rows,
    (softmax(z) - onehot) * dloss / N."""
    return backend(z, "z").softmax_cross_entropy_backward(z, _targets(t), float(dloss))
