"""Reference dense layer and channel bias."""
import numpy as np

__all__ = ["dense_forward", "dense_backward", "bias_add", "bias_grad"]


def dense_forward(x, w, b=None):
    """y (N, Out) = x (N, In) @ w (In, Out), plus b ((Out,) or (1, Out)) in every row."""
    y = x @ w
    if b is not None:
        y = y + np.reshape(b, (1, -1))
    return y


def dense_backward(x, w, dy, need_dx=True, need_db=True):
    """(dx (N, In) = dy @ w.T or None, dw (In, Out) = x.T @ dy, db (Out,) = dy summed over rows
    or None) from dy (N, Out)."""
    dx = dy @ w.T if need_dx else None
    db = dy.sum(axis=0) if need_db else None
    return dx, x.T @ dy, db


def bias_add(x, b):
    """x (N, C, ...) plus b (C elements) along axis 1."""
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    return x + np.reshape(b, shape)


def bias_grad(dy):
    """db (C,): dy (N, C, ...) summed over every axis but 1."""
    axes = tuple(i for i in range(dy.ndim) if i != 1)
    return dy.sum(axis=axes)
