import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, rand

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1), (300, 257)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_reference(shape, dtype):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape, dtype=dtype)
    y = ops.relu_forward(x)
    assert y.dtype == dtype
    assert_close(y, ref.relu_forward(x))
    dy = rand(rng, *shape, dtype=dtype)
    assert_close(ops.relu_backward(dy, y), ref.relu_backward(dy, y))


def test_relu_nan_passes_and_gradient():
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan], dtype=np.float32)
    y = ops.relu_forward(x)
    np.testing.assert_array_equal(y[:4], [0, 0, 0, 3])
    assert np.isnan(y[4])
    rng = np.random.default_rng(1)
    x = rand(rng, 4, 6)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where differences are ill-defined
    g = rand(rng, 4, 6)
    num = numerical_grad(lambda: float((ops.relu_forward(x) * g).sum()), x)
    assert_grad(ops.relu_backward(g, ops.relu_forward(x)), num)
