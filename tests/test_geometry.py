"""The shared index math (csrc/include/fastconv/geometry.h), which the CUDA kernels compile too,
checked against brute force. Pooling windows are covered in test_pool.py."""
import itertools

import numpy as np
import pytest

from fastconv._native import C

GRID = itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), range(1, 4))


def brute_conv_out(size, k, s, p, d):
    """Count the window positions whose taps all lie in the padded input."""
    reach = d * (k - 1) + 1
    return sum(1 for start in range(0, size + 2 * p, s) if start + reach <= size + 2 * p)


@pytest.mark.parametrize("size,k,s,p,d", list(GRID))
def test_conv_out_size_and_inverse_mapping(size, k, s, p, d):
    out = C.conv_out_size(size, k, s, p, d)
    assert out == brute_conv_out(size, k, s, p, d)
    # conv_out_coord inverts o*s - p + t*d: each (input, tap) pair maps back to the one output
    # that reads it, or -1.
    readers = {(o * s - p + t * d, t): o for o in range(out) for t in range(k)}
    for i in range(size):
        for t in range(k):
            assert C.conv_out_coord(i, t, s, p, d, out) == readers.get((i, t), -1)


def test_conv2d_output_shape_asks_cpp():
    x = np.zeros((2, 3, 28, 20), np.float32)
    w = np.zeros((8, 3, 3, 5), np.float32)
    assert C.conv2d_output_shape(x, w, (1, 1), (1, 2), (1, 1)) == (2, 8, 28, 20)
    assert C.conv2d_output_shape(x, w, (2, 3), (0, 0), (2, 1)) == (2, 8, 12, 6)
    with pytest.raises(ValueError, match="output height would be 0"):
        C.conv2d_output_shape(x, np.zeros((8, 3, 29, 1), np.float32), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="w.shape\\[1\\] must be 3"):
        C.conv2d_output_shape(x, np.zeros((8, 2, 3, 3), np.float32), (1, 1), (0, 0), (1, 1))
