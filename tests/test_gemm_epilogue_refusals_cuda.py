"""Where cuBLASLt turns a fused GEMM down, conv2d and dense run their own passes and give the
same results. A real cuBLASLt says no in one of three ways (no result, NOT_SUPPORTED,
INVALID_VALUE); the emulator's heuristic gives each on request (FC_EMU_LT_HEURISTIC), so these run
on the emulator build only, in a child process that has the variable from its start."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv as fc
from helpers import cuda_emulated

pytestmark = pytest.mark.cuda

CHILD = r"""
import numpy as np
import fastconv as fc
from fastconv._native import C, CUDA

rng = np.random.default_rng(0)
x, w, b = rng.random((3, 2, 6, 7)), rng.random((4, 2, 3, 3)) - 0.5, rng.random(4) - 0.5
dev = lambda a: CUDA.from_numpy(np.asarray(a, np.float32))
y = CUDA.conv2d_forward(dev(x), dev(w), dev(b), 1, 1, 1, True).to_numpy()
np.testing.assert_allclose(y, C.conv2d_forward(x, w, b, 1, 1, 1, True), rtol=1e-5, atol=1e-5)
xd, wd, bd, dy = rng.random((5, 7)), rng.random((7, 3)) - 0.5, rng.random(3), rng.random((5, 3))
y = CUDA.dense_forward(dev(xd), dev(wd), dev(bd), True).to_numpy()
np.testing.assert_allclose(y, np.maximum(xd @ wd + bd, 0), rtol=1e-5, atol=1e-5)
dx, dw, db = (a.to_numpy() for a in CUDA.dense_backward(dev(xd), dev(wd), dev(dy), True, True))
np.testing.assert_allclose(dw, xd.T @ dy, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(db, dy.sum(0), rtol=1e-5, atol=1e-5)
print(CUDA._gemm_epilogue_stats())
"""


@pytest.mark.parametrize("answer", ["none", "not_supported", "invalid"])
def test_a_refused_epilogue_runs_the_own_passes(answer):
    if not cuda_emulated():
        pytest.skip("the refusals are the emulator's on request; a GPU's cuBLASLt chooses its own")
    package_root = str(Path(fc.__file__).resolve().parents[1])
    env = {**os.environ, "FC_EMU_LT_HEURISTIC": answer,
           "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    # The conv forward, the dense forward and the dense dW GEMM each asked and were refused.
    assert out.stdout.strip() == "{'fused': 0, 'refused': 3}"
