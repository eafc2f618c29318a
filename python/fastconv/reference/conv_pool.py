"""conv2d + ReLU + 2x2 stride-2 max pooling, as the composition of the conv and pool references."""
from __future__ import annotations

import numpy as np

from .conv import conv2d_backward, conv2d_forward
from .pool import max_pool2d_forward

__all__ = ["conv2d_relu_max_pool2d_forward", "conv2d_relu_max_pool2d_backward"]


def conv2d_relu_max_pool2d_forward(x, w, b=None, stride=1, padding=0, dilation=1,
                                   window_indices=False):
    """(y, indices) = max_pool2d_forward(conv2d_forward(..., relu=True), 2, 2, 0, False,
    window_indices)."""
    z = conv2d_forward(x, w, None if b is None else np.reshape(b, -1), stride, padding, dilation,
                       relu=True)
    return max_pool2d_forward(z, 2, 2, 0, False, window_indices)


def conv2d_relu_max_pool2d_backward(x, w, dy, y, indices, stride=1, padding=0, dilation=1,
                                    need_dx=True, need_db=True, window_indices=False):
    """dy placed at each window's index where y > 0 (an index outside its own window, or a code
    other than 0-3, places nothing), then conv2d_backward."""
    z_shape = conv2d_forward(x[:1, :, :, :], w, None, stride, padding, dilation).shape
    n, k, ph, pw = np.shape(dy)
    oh, ow = z_shape[2], z_shape[3]
    dz = np.zeros((n, k, oh, ow), dtype=np.float64)
    g = np.where(np.asarray(y) > 0, dy, 0.0)
    for i in range(ph):
        for j in range(pw):
            for di in range(2):
                for dj in range(2):
                    at = 2 * di + dj if window_indices else (2 * i + di) * ow + 2 * j + dj
                    dz[:, :, 2 * i + di, 2 * j + dj] = np.where(indices[:, :, i, j] == at,
                                                                g[:, :, i, j], 0.0)
    return conv2d_backward(x, w, dz.astype(x.dtype), stride, padding, dilation, need_dx, need_db)
