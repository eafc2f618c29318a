"""Dense, bias_add and bias_grad on the GPU against their CPU twins (marked `cuda`: skipped with
the reason where no GPU is usable): float32 GPU results against the CPU's float64, with
tolerances scaled by the reduction length (TF32 off). Outputs are poisoned (NaN) first on both
backends."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_close, both, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 7, 5), (64, 128, 10), (37, 300, 129)])
def test_dense_matches_cpu(n, i, o, tf32_off):
    rng = np.random.default_rng(n + i + o)
    x, w, b = rand(rng, n, i), rand(rng, i, o), rand(rng, o)
    cy, gy = both("dense_forward", x, w, b)
    assert_close(gy, cy, reduction=i)
    dy = rand(rng, n, o)
    cpu, gpu = both("dense_backward", x, w, dy, True, True)
    for g, e, r in zip(gpu, cpu, (o, n, n)):
        assert_close(g, e, reduction=r)
    cpu, gpu = both("dense_backward", x, w, dy, False, False)
    assert gpu[0] is None and gpu[2] is None


@pytest.mark.parametrize("shape", [(2, 3), (4, 5, 6, 7), (1, 16, 1, 1), (3, 2, 5)])
def test_bias_add_and_grad_match_cpu(shape):
    rng = np.random.default_rng(len(shape))
    x, b = rand(rng, *shape), rand(rng, shape[1])
    cy, gy = both("bias_add", x, b)
    assert_close(gy, cy)
    cg, gg = both("bias_grad", x)
    assert_close(gg, cg, reduction=x.size // shape[1])


# bias_grad cuts each channel's N*inner terms into chunks of 4,096 (one block each), then adds the
# chunks' sums per channel: these shapes make several chunks, chunk boundaries inside a sample
# (inner 5,000), and inner 1 (the dense layer's (N, Out) layout).
@pytest.mark.parametrize("shape", [(64, 8, 30, 30), (3, 2, 5000), (20000, 3), (257, 5, 7, 9)])
def test_bias_grad_in_chunks_matches_cpu_and_repeats_bitwise(shape):
    from fastconv._native import CUDA
    from helpers import dev, host

    x = rand(np.random.default_rng(9), *shape)
    cg, gg = both("bias_grad", x)
    assert_close(gg, cg, reduction=x.size // shape[1])
    d = dev(x.astype(np.float32))
    np.testing.assert_array_equal(host(CUDA.bias_grad(d)), host(CUDA.bias_grad(d)))
