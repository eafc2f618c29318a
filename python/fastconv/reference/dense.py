"""Reference dense layer and channel bias."""
import numpy as np

__all__ = ["dense_forward", "dense_backward", "bias_add", "bias_grad"]


def dense_forward(x, w, b=None, relu=False):
    """y (N, Out) = x (N, In) @ w (In, Out), plus b ((Out,) or (1, Out)) in every row, then
    max(y, 0) if relu."""
    y = x @ w
    if b is not None:
        y = y + np.reshape(b, (1, -1))
    return np.where(y < 0, np.zeros_like(y), y) if relu else y


def dense_backward(x, w, dy, need_dx=True, need_db=True, relu_y=None):
    """(dx (N, In) = dy @ w.T or None, dw (In, Out) = x.T @ dy, db (Out,) = dy summed over rows
    or None) from dy (N, Out); dy is first masked by relu_y > 0 when the forward pass fused a ReLU
    with output relu_y."""
    if relu_y is not None:  # the fused ReLU's gradient: dy only where its output was positive
        dy = np.where(relu_y > 0, dy, np.zeros_like(dy))
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
