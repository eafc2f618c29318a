"""Reference relu (and dropout)."""
import numpy as np

__all__ = ["relu_forward", "relu_backward"]


def relu_forward(x):
    return np.where(x < 0, np.zeros_like(x), x)


def relu_backward(dy, y):
    return np.where(y > 0, dy, np.zeros_like(dy))
