"""conv2d on the GPU against its CPU twin, on test_conv's shape matrix (marked `cuda`: skipped
with the reason where no GPU is usable).

The CUDA module takes the CPU module's arguments with device arrays in place of numpy arrays, so
each test runs the same call on both (helpers.both) and compares float32 GPU results against the
CPU's float64 results, with tolerances scaled by the reduction length (TF32 off), or a TF32
tolerance where TF32 is switched on. Outputs are poisoned (NaN) first on both backends.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, both, cuda_emulated, dev, host, pairs, rand, rand32
from test_conv import CASES as CONV_CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # launch_count

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

TF32_U = 2.0 ** -11  # TF32 keeps 10 mantissa bits: unit roundoff of the GEMM inputs


def _conv_data(case, seed=0):
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    x = rand32(rng, n, c, h, w_)
    w = rand32(rng, k, c, kh, kw)
    b = rand32(rng, k) if bias else None
    return x, w, b, pairs(stride), pairs(padding), pairs(dilation)


def lt_calls():
    s = CUDA._gemm_epilogue_stats()
    return s["fused"] + s["refused"]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_cpu(case, relu, tf32_off, epilogues):
    x, w, b, st, pa, di = _conv_data(case)
    n, c, _, _, k, kh, kw = case[:7]
    calls = lt_calls()
    cpu_y, gpu_y = both("conv2d_forward", x, w, b, st, pa, di, relu)
    # Asked once a group where the GEMM needs more than itself (and the output is not empty).
    asks = epilogues and (n > 1 or relu or b is not None) and cpu_y.size > 0
    assert (lt_calls() > calls) == asks
    assert_close(gpu_y, cpu_y, reduction=c * kh * kw)
    dy = rand32(np.random.default_rng(1), *cpu_y.shape)
    # The GPU's own forward output as the mask on both: the CPU's could differ in sign where an
    # output is within rounding of 0, and one flipped mask element is an O(1) error.
    relu_cpu = gpu_y.astype(np.float64) if relu else None
    cpu = C.conv2d_backward(x, w, dy, st, pa, di, True, b is not None, relu_cpu)
    gpu = CUDA.conv2d_backward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                               dev(dy.astype(np.float32)), st, pa, di, True, b is not None,
                               dev(gpu_y) if relu else None)
    oh, ow = cpu_y.shape[2:]
    reductions = (k * kh * kw, n * oh * ow, n * oh * ow)
    for g, e, r in zip(gpu, cpu, reductions):
        if e is None:
            assert g is None
        else:
            assert_close(host(g), e, reduction=r)


def test_conv2d_forward_fuses_bias_and_relu_into_its_gemm(tf32_off):
    # Two samples in one group: one batched cuBLASLt GEMM writes NCHW with the bias and the ReLU
    # applied, and no pass of fastconv's own follows. Which layouts a real cuBLASLt takes is the
    # card's to say (benchmarks/switches.py counts them); the emulator takes every one.
    if not cuda_emulated():
        pytest.skip("whether cuBLASLt fuses this layout is the card's choice; "
                    "benchmarks/switches.py reports it")
    import launch_count

    x, w, b, st, pa, di = _conv_data((2, 3, 7, 9, 4, 3, 3, 1, 1, 1, True), seed=8)
    args = (dev(x.astype(np.float32)), dev(w.astype(np.float32)), dev(b.astype(np.float32)),
            st, pa, di, True)
    launches = {}
    for fused in (False, True):
        CUDA.set_gemm_epilogues(fused)
        stats, before = CUDA._gemm_epilogue_stats(), launch_count.counts()[0]
        gpu_y = host(CUDA.conv2d_forward(*args))
        launches[fused] = launch_count.counts()[0] - before
    after = CUDA._gemm_epilogue_stats()
    assert (after["fused"] - stats["fused"], after["refused"] - stats["refused"]) == (1, 0)
    assert launches[False] - launches[True] == 1  # the GEMM-layout pass
    assert_close(gpu_y, C.conv2d_forward(x, w, b, st, pa, di, True), reduction=3 * 9)


def column_budget_bytes():
    """Half the L2 cache, within 8 and 64 MiB: what a conv group's scratch may take."""
    l2 = CUDA.device_properties()["l2_cache_bytes"]
    return min(64 << 20, max(8 << 20, l2 // 2)) if l2 > 0 else 64 << 20


def expected_group(n, per_sample_bytes):
    most = max(1, column_budget_bytes() // per_sample_bytes)
    groups = -(-n // most)
    return -(-n // groups)


def test_conv2d_groups_stay_within_half_the_l2_cache_and_are_even():
    per_sample = (32 * 9 + 64) * 28 * 28 * 4  # the tutorial's second conv
    x = CUDA.empty((256, 32, 28, 28), "float32")
    w = CUDA.empty((64, 32, 3, 3), "float32")
    group = expected_group(256, per_sample)
    assert CUDA.conv2d_scratch_bytes(x, w, (1, 1), (1, 1), (1, 1)) == group * per_sample
    assert group * per_sample <= max(column_budget_bytes(), per_sample)
    sizes = [min(group, 256 - start) for start in range(0, 256, group)]
    assert max(sizes) - min(sizes) < len(sizes)  # even: no small last group


def test_conv2d_many_groups_accumulate_dw_in_batch_order(tf32_off):
    # (64*9 + 16) * 64*64 floats a sample: with the emulator's 50 MiB of L2, at most 2 samples a
    # group, so 13 samples make 2, 2, 2, 2, 2, 2 and 1 (the one-sample group writes the output
    # in place).
    case = (13, 64, 64, 64, 16, 3, 3, 1, 1, 1, True)
    x, w, b, st, pa, di = _conv_data(case, seed=3)
    cpu_y, gpu_y = both("conv2d_forward", x, w, b, st, pa, di, False)
    assert_close(gpu_y, cpu_y, reduction=64 * 9)
    dy = rand(np.random.default_rng(4), *cpu_y.shape)
    cpu, gpu = both("conv2d_backward", x, w, dy, st, pa, di, True, True, None)
    for g, e, r in zip(gpu, cpu, (16 * 9, 13 * 64 * 64, 13 * 64 * 64)):
        assert_close(g, e, reduction=r)
    s = CUDA.conv2d_scratch_bytes(dev(x.astype(np.float32)), dev(w.astype(np.float32)), st, pa, di)
    per_sample = (64 * 9 + 16) * 64 * 64 * 4
    assert s == expected_group(13, per_sample) * per_sample


def test_conv2d_tf32_within_its_own_tolerance():
    case = (4, 32, 16, 16, 32, 3, 3, 1, 1, 1, True)
    x, w, b, st, pa, di = _conv_data(case, seed=5)
    cpu_y = C.conv2d_forward(x, w, b, st, pa, di, False)
    try:
        CUDA.set_tf32(True)
        gpu_y = host(CUDA.conv2d_forward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                                         dev(b.astype(np.float32)), st, pa, di, False))
    finally:
        CUDA.set_tf32(False)
    scale = float(np.abs(cpu_y).max())
    tol = 8 * TF32_U * math.sqrt(32 * 9)
    np.testing.assert_allclose(gpu_y, cpu_y, rtol=0, atol=tol * scale)
    off = host(CUDA.conv2d_forward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                                   dev(b.astype(np.float32)), st, pa, di, False))
    assert_close(off, cpu_y, reduction=32 * 9)


def test_conv2d_relu_bias_gradient_over_many_chunks(tf32_off):
    # 9 * 40 * 40 = 14,400 terms a channel: the bias gradient, summed in the dy layout pass
    # through the fused ReLU's mask, uses four chunks of 4,096; a rerun gives the same bits.
    # (test_conv2d_many_groups_accumulate_dw_in_batch_order covers chunks over several groups.)
    case = (9, 4, 40, 40, 6, 3, 3, 1, 1, 1, True)
    x, w, b, st, pa, di = _conv_data(case, seed=6)
    gpu_y = host(CUDA.conv2d_forward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                                     dev(b.astype(np.float32)), st, pa, di, True))
    dy = rand32(np.random.default_rng(7), *gpu_y.shape)
    cpu = C.conv2d_backward(x, w, dy, st, pa, di, True, True, gpu_y.astype(np.float64))
    args = (dev(x.astype(np.float32)), dev(w.astype(np.float32)), dev(dy.astype(np.float32)),
            st, pa, di, True, True, dev(gpu_y))
    gpu = [host(a) for a in CUDA.conv2d_backward(*args)]
    for g, e, r in zip(gpu, cpu, (6 * 9, 9 * 40 * 40, 9 * 40 * 40)):
        assert_close(g, e, reduction=r)
    for g, again in zip(gpu, CUDA.conv2d_backward(*args)):
        np.testing.assert_array_equal(host(again), g)
