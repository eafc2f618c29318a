"""Max and average pooling on the GPU against their CPU twins, on test_pool's shape matrix
(marked `cuda`: skipped with the reason where no GPU is usable). Max pooling is exact, so bitwise
the CPU's float32, ties and NaN included; average pooling against the CPU's float64 with a
tolerance scaled by the window. Outputs are poisoned (NaN) first on both backends."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, both, dev, host, pairs, rand
from test_pool import CASES as POOL_CASES

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_max_pool_equals_cpu_bitwise(shape, k, s, p, ceil_mode):
    x = rand(np.random.default_rng(0), *shape).astype(np.float32)
    k, s, p = pairs(k), pairs(s), pairs(p)
    (cy, ci), (gy, gi) = both("max_pool2d_forward", x, k, s, p, ceil_mode, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    np.testing.assert_array_equal(gi, ci)
    dy = rand(np.random.default_rng(1), *cy.shape).astype(np.float32)
    cdx = C.max_pool2d_backward(x, dy, ci, k, s, p, ceil_mode)
    gdx = CUDA.max_pool2d_backward(dev(x), dev(dy), dev(ci), k, s, p, ceil_mode)
    np.testing.assert_array_equal(host(gdx), cdx)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), (3, 2)])
def test_max_pool_ties_and_nan_like_cpu(k, s):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(2, 3, 9, 8)).astype(np.float32)  # many ties
    x[0, 1, 4, 4] = np.nan
    x[1, 2, 0, 0] = np.nan
    (cy, ci), (gy, gi) = both("max_pool2d_forward", x, (k, k), (s, s), (0, 0), False,
                              cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)  # NaN == NaN in assert_array_equal
    np.testing.assert_array_equal(gi, ci)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_average_pool_matches_cpu(shape, k, s, p, ceil_mode, count_include_pad):
    x = rand(np.random.default_rng(0), *shape)
    k, s, p = pairs(k), pairs(s), pairs(p)
    cy, gy = both("average_pool2d_forward", x, k, s, p, ceil_mode, count_include_pad)
    assert_close(gy, cy, reduction=k[0] * k[1])
    dy = rand(np.random.default_rng(1), *cy.shape)
    cdx, gdx = both("average_pool2d_backward", x, dy, k, s, p, ceil_mode, count_include_pad)
    assert_close(gdx, cdx, reduction=k[0] * k[1])


def test_window_indices_are_cpu_only():
    """The GPU has no window-code kernels: window_indices=True on device arrays is refused by
    name (fastconv.functional keeps flat indices there)."""
    import fastconv.ops as ops
    from helpers import raises_exactly

    x = rand(np.random.default_rng(3), 2, 3, 8, 8).astype(np.float32)
    y, idx = CUDA.max_pool2d_forward(dev(x), (2, 2), (2, 2), (0, 0), False)
    message = ("window_indices must be False for device arrays (window indices are CPU-only; "
               "the GPU uses int64 flat indices); got True")
    with raises_exactly(ValueError, message):
        ops.max_pool2d_forward(dev(x), 2, 2, window_indices=True)
    with raises_exactly(ValueError, message):
        ops.max_pool2d_backward(dev(x), y, idx, 2, 2, window_indices=True)
