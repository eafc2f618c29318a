"""ops.adam_bias_corrections, the host side of Adam's device-memory bias corrections (the GPU
side: test_device_scalars_cuda.py): float32 rows (1 - beta1**t, 1 - beta2**t) formed in double
and rounded once, as the C++ updates form them; its argument checks; and the CPU's refusal of
`corrections` (it forms them from the steps)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv.ops as ops
from helpers import raises_exactly

BETAS = [0.9, 0.999, 0.5, 0.0, 0.99, 0.8]


@pytest.mark.parametrize("beta", BETAS)
def test_rows_are_one_minus_beta_to_the_step_in_double_rounded_once(beta):
    steps = list(range(1, 2001)) + [10**6, 2**62]
    c = ops.adam_bias_corrections(steps, beta, 0.5)
    assert c.dtype == np.float32 and c.shape == (len(steps), 2)
    # Python's float pow is the C library's pow, as std::pow(double, double) is here.
    want = np.array([np.float32(1.0 - math.pow(beta, float(t))) for t in steps], np.float32)
    assert c[:, 0].tobytes() == want.tobytes()
    assert c[:, 1].tobytes() == np.array([np.float32(1.0 - 0.5**t) for t in steps]).tobytes()


def test_empty_and_tuple_steps():
    assert ops.adam_bias_corrections([], 0.9, 0.999).shape == (0, 2)
    c = ops.adam_bias_corrections((1, 2), 0.5, 0.0)
    assert c.tolist() == [[0.5, 1.0], [0.75, 1.0]]


def test_the_cpu_update_refuses_corrections():
    z = [np.zeros(3, np.float32)]
    with raises_exactly(TypeError, "corrections must be None on the CPU (device-memory bias "
                        "corrections are for the GPU); got ndarray"):
        ops.adam_update_multi(z, [np.ones(3, np.float32)], [np.zeros(3, np.float32)],
                              [np.zeros(3, np.float32)], [1], corrections=np.ones((1, 2)))
    assert z[0].tobytes() == np.zeros(3, np.float32).tobytes()  # checked before any write


BAD_CALLS = [
    (TypeError, "steps must be a list or tuple of ints; got int",
     lambda: ops.adam_bias_corrections(3, 0.9, 0.999)),
    (TypeError, "steps[1] must be an int (the 1-based count of this update); got float",
     lambda: ops.adam_bias_corrections([1, 2.0], 0.9, 0.999)),
    (ValueError, "steps[0] must be >= 1 (the 1-based count of this update); got 0",
     lambda: ops.adam_bias_corrections([0], 0.9, 0.999)),
    (ValueError, "beta1 must be in [0, 1); got 1.0",
     lambda: ops.adam_bias_corrections([1], 1.0, 0.999)),
    (ValueError, "beta2 must be in [0, 1); got -0.1",
     lambda: ops.adam_bias_corrections([1], 0.9, -0.1)),
]


@pytest.mark.parametrize("exc, message, call", BAD_CALLS)
def test_bad_input(exc, message, call):
    with raises_exactly(exc, message):
        call()
