"""benchmarks/switches.py, the GPU check's timing of two GPU-path choices both ways (cuBLASLt's
fused epilogues, L2-sized conv groups), run at its smoke sizes, and the conv-budget hook it
uses (marked `cuda`: on the emulator its timings mean nothing, but every work runs both ways and
the GEMMs are counted)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv._native import C, CUDA
from helpers import assert_close, cuda_emulated, dev, host, raises_exactly, rand32

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = pytest.mark.cuda


def test_quick_run_times_every_work_both_ways(tmp_path, capsys):
    import switches

    out = tmp_path / "switches.json"
    assert switches.main(["--quick", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    rows = saved["rows"]
    names = [(r["switch"], r["work"].split(",")[0]) for r in rows]
    assert names == [
        ("epilogues", "conv 1->32 3x3 28x28 + bias + ReLU"),
        ("epilogues", "conv 32->64 3x3 28x28 + bias + ReLU"),
        ("epilogues", "dense 12544->128 forward"), ("epilogues", "dense 12544->128 backward"),
        ("epilogues", "training step"),
        ("conv_groups", "conv 1->32 3x3 28x28 + bias + ReLU"),
        ("conv_groups", "conv 32->64 3x3 28x28 + bias + ReLU"),
        ("conv_groups", "conv 32->64 backward"), ("conv_groups", "training step"),
        ("conv_kernel", "conv 1->32 3x3 28x28 + bias + ReLU"),
        ("conv_kernel", "conv 32->64 3x3 28x28 + bias + ReLU"),
        ("conv_kernel_tf32", "conv 1->32 3x3 28x28 + bias + ReLU"),
        ("conv_kernel_tf32", "conv 32->64 3x3 28x28 + bias + ReLU"),
        ("conv_backward_kernel", "conv 1->32 3x3 28x28 backward"),
        ("conv_backward_kernel", "conv 32->64 3x3 28x28 backward"),
        ("conv_backward_kernel_tf32", "conv 1->32 3x3 28x28 backward"),
        ("conv_backward_kernel_tf32", "conv 32->64 3x3 28x28 backward"),
        ("autotune", "training step")]
    for r in rows:
        assert r["default_ms"] > 0 and r["other_ms"] > 0 and r["ratio"] > 0
    # Each conv forward (batch 4 is one group), the dense forward and the dense dW GEMM with its
    # bias gradient ask cuBLASLt once; the emulator takes every one.
    assert all(r["gemms_fused"] + r["gemms_refused"] == 1 for r in rows[:4])
    if cuda_emulated():
        assert all(r["gemms_refused"] == 0 for r in rows) and rows[4]["gemms_fused"] > 0
    text = capsys.readouterr().out
    assert "| training step, batch 4 |" in text and "| work | half L2 | 64 MiB |" in text
    assert "| work | im2col | implicit |" in text
    assert "the same with TF32 on for both:" in text
    # Autotuning timed the step's two convs, forward and backward (conv1's without dx), once.
    chosen = [(r["pass"], tuple(r["w"]), r["need_dx"]) for r in saved["autotune"]]
    assert sorted(chosen) == [
        ("backward", (32, 1, 3, 3), False), ("backward", (64, 32, 3, 3), True),
        ("forward", (32, 1, 3, 3), False), ("forward", (64, 32, 3, 3), False)]
    assert "conv autotuning's choices" in text
    assert fc.gemm_epilogues() is True and CUDA._conv_forward_kernel() == "auto"  # restored
    assert CUDA._conv_backward_kernel() == "auto" and fc.conv_autotune() is False
    assert fc.tf32() is False


def test_a_fixed_column_budget_regroups_the_conv_and_keeps_its_results(tf32_off):
    rng = np.random.default_rng(0)
    x, w, b = rand32(rng, 5, 3, 9, 9), rand32(rng, 4, 3, 3, 3), rand32(rng, 4)
    args = (dev(x.astype(np.float32)), dev(w.astype(np.float32)), dev(b.astype(np.float32)),
            1, 1, 1)
    per_sample = (3 * 9 + 4) * 9 * 9 * 4
    auto = CUDA.conv2d_scratch_bytes(args[0], args[1], 1, 1, 1)
    try:
        CUDA._set_conv_column_budget(2 * per_sample)  # two samples a group: 2, 2, 1
        assert CUDA.conv2d_scratch_bytes(args[0], args[1], 1, 1, 1) == 2 * per_sample
        y = host(CUDA.conv2d_forward(*args, True))
        CUDA._set_conv_column_budget(1)  # below one sample: one sample a group
        assert CUDA.conv2d_scratch_bytes(args[0], args[1], 1, 1, 1) == per_sample
    finally:
        CUDA._set_conv_column_budget(0)
    assert CUDA.conv2d_scratch_bytes(args[0], args[1], 1, 1, 1) == auto == 5 * per_sample
    assert_close(y, C.conv2d_forward(x, w, b, 1, 1, 1, True), reduction=3 * 9)
    with raises_exactly(ValueError, "bytes must be >= 0; got -1"):
        CUDA._set_conv_column_budget(-1)
