"""SGD and Adam on the GPU against their CPU twins (marked `cuda`: skipped with the reason where
no GPU is usable): the updates are elementwise and exact, so parameters and state must equal the
CPU's float32 bit for bit after several steps; and state that aliases the gradient is refused."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import dev, host, overlap, raises_exactly, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 1e-4),
                                                  (0.9, True, 0.0)])
def test_sgd_equals_cpu_bitwise(momentum, nesterov, wd):
    rng = np.random.default_rng(0)
    p = rand(rng, 257, 3).astype(np.float32)
    vel = np.zeros_like(p) if momentum else None
    gp, gv = dev(p), dev(vel) if momentum else None
    for step in range(3):
        g = rand(rng, 257, 3).astype(np.float32)
        C.sgd_update(p, g, vel, 0.05, momentum, nesterov, wd)
        CUDA.sgd_update(gp, dev(g), gv, 0.05, momentum, nesterov, wd)
    assert host(gp).tobytes() == p.tobytes()
    if momentum:
        assert host(gv).tobytes() == vel.tobytes()


def test_adam_equals_cpu_bitwise():
    rng = np.random.default_rng(0)
    p = rand(rng, 300).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    gp, gm, gv = dev(p), dev(m), dev(v)
    for step in range(1, 5):
        g = rand(rng, 300).astype(np.float32)
        C.adam_update(p, g, m, v, step, 1e-3, 0.9, 0.999, 1e-8, 1e-4)
        CUDA.adam_update(gp, dev(g), gm, gv, step, 1e-3, 0.9, 0.999, 1e-8, 1e-4)
    for a, b in ((gp, p), (gm, m), (gv, v)):
        assert host(a).tobytes() == b.tobytes()


def test_optimizer_state_views_must_not_overlap_the_gradient():
    # Slices of one device buffer can now alias: written arrays must be apart from grad.
    buf = dev(np.zeros((4, 3), np.float32))
    p, g = dev(np.zeros((2, 3), np.float32)), buf[0:2]
    with raises_exactly(ValueError, overlap("velocity", "grad", 12, 24)):
        CUDA.sgd_update(p, g, buf[1:3], 0.1, 0.9, False, 0.0)
    with raises_exactly(ValueError, overlap("param", "grad", 12, 24)):
        CUDA.sgd_update(buf[1:3], g, None, 0.1, 0.0, False, 0.0)
    with raises_exactly(ValueError, overlap("m", "grad", 12, 24)):
        CUDA.adam_update(p, g, buf[1:3], dev(np.zeros((2, 3), np.float32)), 1, 0.1, 0.9, 0.999,
                         1e-8, 0.0)
    CUDA.sgd_update(p, g, buf[2:4], 0.1, 0.9, False, 0.0)  # disjoint rows of one buffer: fine
