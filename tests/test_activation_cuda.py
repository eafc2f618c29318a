"""Relu and dropout on the GPU against their CPU twins (marked `cuda`: skipped with the reason
where no GPU is usable). Both are exact, so bitwise the CPU's float32: dropout's generator is a
function of seed and element index, the same mask on both. Outputs are poisoned (NaN) first on
both backends."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import both, host, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


def test_relu_equals_cpu_bitwise():
    x = rand(np.random.default_rng(0), 5, 7, 11).astype(np.float32)
    x[0, 0, :3] = [np.nan, -0.0, 0.0]
    cy, gy = both("relu_forward", x, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    dy = rand(np.random.default_rng(1), *x.shape).astype(np.float32)
    cd, gd = both("relu_backward", dy, cy, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gd, cd)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
def test_dropout_same_mask_as_cpu(ratio, seed):
    x = rand(np.random.default_rng(0), 3, 1000).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    # Equal values, NaN matching NaN: the GPU writes its canonical NaN for NaN * scale, the CPU
    # keeps the input's payload, so the kept NaN's bytes may differ.
    cy, gy = both("dropout_forward", x, ratio, seed, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    assert ((gy == 0) == (cy == 0)).all()
    cd, gd = both("dropout_backward", x, ratio, seed, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gd, cd)
    cm = C.dropout_mask((3, 1000), ratio, seed, np.float32)
    gm = host(CUDA.dropout_mask((3, 1000), ratio, seed, np.float32))
    assert gm.tobytes() == cm.tobytes()
