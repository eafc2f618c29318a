"""benchmarks/roofline.py: the GPU step's bytes and FLOPs, checked against independent counts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import roofline  # noqa: E402
import step_rows  # noqa: E402


@pytest.mark.parametrize("n", [1, 64, 256])
def test_gemm_flops_are_the_benchmarks_step_flops(n):
    kinds = {k.name: k for k in roofline.step_kernels(n)}
    assert kinds["cuBLAS GEMMs"].flops == step_rows.step_flops(n)[0]


def test_conv2_columns_are_the_231_mb_of_issue_11():
    # conv2's column matrix at batch 256 is 256 x 288 x 784 floats; im2col writes it twice a step
    # (forward, and again for dW) and reads the 25.7 MB input each time; conv1 adds its own.
    kinds = {k.name: k for k in roofline.step_kernels(256)}
    conv2 = 2 * (256 * 288 * 784 + 256 * 32 * 784) * 4
    conv1 = 2 * (256 * 9 * 784 + 256 * 784) * 4
    assert kinds["im2col"].bytes == conv1 + conv2
    assert kinds["col2im (gather)"].bytes == (256 * 288 * 784 + 256 * 32 * 784) * 4


def test_floor_is_bytes_or_flops_whichever_is_slower():
    k = roofline.Kernel("x", 1, bytes=3950e6, flops=0.0)
    assert k.floor_us() == pytest.approx(1000.0)
    k = roofline.Kernel("y", 1, bytes=1.0, flops=49.9e12)
    assert k.floor_us() == pytest.approx(1e6)


def test_command_prints_both_batches_and_refuses_a_bad_one():
    run = subprocess.run([sys.executable, str(BENCH / "roofline.py")], capture_output=True,
                         text=True, check=True)
    assert "Batch 64:" in run.stdout and "Batch 256:" in run.stdout
    assert "| im2col | 4 | 529.9 |" in run.stdout
    bad = subprocess.run([sys.executable, str(BENCH / "roofline.py"), "--batch", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--batch must be positive; got 0" in bad.stderr
