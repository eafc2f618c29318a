"""The implicit-GEMM conv2d forward (csrc/cuda/conv_implicit.cu) against the CPU twin in float64,
chosen through the private _cuda._set_conv_forward_kernel hook (marked `cuda`; outputs poisoned,
so an element the kernel leaves unwritten fails).

The kernel computes in FP32 FMA, checked at the float32 tolerance (reduction = c*kh*kw), or
with TF32 on (fastconv.set_tf32) on the tensor cores, checked at TF32's tolerance. On the
emulator the tensor-core step runs its twin (mma_tf32_chunk's plain-code branch): there it checks
the tiling, the fragments' positions in the epilogue and the TF32 rounding, not the PTX itself.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, cuda_emulated, dev, host, pairs, raises_exactly, rand32
from test_conv import CASES as CONV_CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # launch_count

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

TF32_U = 2.0 ** -11  # TF32 keeps 10 mantissa bits: unit roundoff of the products' inputs

# Beyond test_conv's matrix: several tiles in every dimension of the GEMM with partial last
# tiles (70 channels: 64 + 6; 3*19*23 = 1311 pixels: 20 tiles of 64 + 31; 37*9 = 333 reduction
# rows: 20 chunks of 16 + 13), the small-k tile (<= 32 channels) with several pixel tiles, batch
# 1, one channel, 1x1 filters, stride 2, dilation 2, and a reduction shorter than one chunk.
# (n, c, h, w, k, kh, kw, stride, padding, dilation, bias)
BIG_CASES = [
    (3, 37, 19, 23, 70, 3, 3, 1, 1, 1, True),
    (1, 5, 17, 21, 33, 3, 3, 2, 1, 1, True),           # 33 channels: the 64-tile, 1 of 2 used
    (2, 1, 20, 19, 32, 3, 3, 1, 1, 1, True),           # 1 channel: 9 rows, the 32-channel tile
    (1, 24, 13, 11, 40, 1, 1, 1, 0, 1, False),         # 1x1: a plain GEMM
    (2, 6, 15, 14, 67, 3, 3, 2, (1, 0), 2, True),      # stride 2 with dilation 2
    (1, 3, 12, 37, 5, 5, 3, (1, 2), 2, (2, 1), False),  # every pair mixed, 5 channels
]


@pytest.fixture
def kernel():
    """Sets the conv forward kernel for the test, 'auto' restored after."""
    yield lambda name: CUDA._set_conv_forward_kernel(name)
    CUDA._set_conv_forward_kernel("auto")


def _data(case, seed=0):
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    x, w = rand32(rng, n, c, h, w_), rand32(rng, k, c, kh, kw)
    b = rand32(rng, k) if bias else None
    return x, w, b, pairs(stride), pairs(padding), pairs(dilation)


def _gpu_args(x, w, b, *geo):
    return (dev(x.astype(np.float32)), dev(w.astype(np.float32)),
            None if b is None else dev(b.astype(np.float32)), *geo)


def lt_calls():
    s = CUDA._gemm_epilogue_stats()
    return s["fused"] + s["refused"]


def launches():
    if not cuda_emulated():
        return 0
    import launch_count

    return launch_count.counts()[0]


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", CONV_CASES + BIG_CASES)
def test_implicit_forward_matches_cpu(case, relu, bias, kernel):
    x, w, _, *geo = _data(case)
    k, c, kh, kw = w.shape
    b = rand32(np.random.default_rng(2), k) if bias else None
    kernel("implicit")
    args = _gpu_args(x, w, b, *geo)
    calls = lt_calls()
    y = host(CUDA.conv2d_forward(*args, relu))
    assert lt_calls() == calls  # no cuBLASLt GEMM: the implicit kernel ran
    expected = C.conv2d_forward(x, w, b, *geo, relu)
    assert_close(y, expected, reduction=c * kh * kw)
    if relu:
        assert (y >= 0).all()
    # The same bits again: one thread an output, a fixed summation order.
    np.testing.assert_array_equal(host(CUDA.conv2d_forward(*args, relu)), y)


def test_implicit_forward_is_one_kernel_and_no_gemm(kernel):
    if not cuda_emulated():
        pytest.skip("launches are counted on the emulator")
    x, w, b, *geo = _data(BIG_CASES[0], seed=1)
    args = _gpu_args(x, w, b, *geo)
    counts = {}
    CUDA._set_poison_outputs(False)  # no fill launch before the kernels
    try:
        for name in ("im2col", "implicit", "auto"):
            kernel(name)
            before, calls = launches(), lt_calls()
            CUDA.conv2d_forward(*args, True)
            counts[name] = (launches() - before, lt_calls() - calls)
    finally:
        CUDA._set_poison_outputs(True)
    # im2col, then one batched cuBLASLt GEMM (cuBLAS calls are not counted as launches) with
    # the bias and ReLU in its epilogue; the implicit kernel alone; 'auto' takes im2col today.
    assert counts == {"im2col": (1, 1), "implicit": (1, 0), "auto": (1, 1)}


@pytest.mark.parametrize("case", CONV_CASES + BIG_CASES)
def test_auto_without_autotuning_picks_im2col_for_every_shape(case, kernel, tf32_off):
    # With autotuning off (the default), 'auto' gives im2col's bits and asks cuBLASLt exactly as
    # im2col does.
    x, w, b, *geo = _data(case, seed=4)
    args = _gpu_args(x, w, b, *geo)
    out = {}
    for name in ("im2col", "auto"):
        kernel(name)
        calls = lt_calls()
        out[name] = (host(CUDA.conv2d_forward(*args, True)), lt_calls() - calls)
    np.testing.assert_array_equal(out["auto"][0], out["im2col"][0])
    assert out["auto"][1] == out["im2col"][1]


@pytest.mark.parametrize("tf32", [False, True], ids=["fp32", "tf32"])
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[14]] + BIG_CASES[:3])
def test_the_int64_kernels_give_the_int32_kernels_bits(case, tf32, kernel, tf32_off):
    # Only sizes past 2**30 elements take the int64 (PlainDiv) kernels on their own; the hook
    # runs them here, on the 3x3 and general filters, both tile heights, FP32 and TF32. Same
    # products in the same order: the same bits.
    x, w, b, *geo = _data(case, seed=7)
    args = _gpu_args(x, w, b, *geo)
    kernel("implicit")
    CUDA.set_tf32(tf32)
    y32 = host(CUDA.conv2d_forward(*args, True))
    try:
        CUDA._set_conv_implicit_index64(True)
        y64 = host(CUDA.conv2d_forward(*args, True))
    finally:
        CUDA._set_conv_implicit_index64(False)
        CUDA.set_tf32(False)
    np.testing.assert_array_equal(y64, y32)
    if not tf32:
        k, c, kh, kw = w.shape
        assert_close(y64, C.conv2d_forward(x, w, b, *geo, True), reduction=c * kh * kw)


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", [CONV_CASES[i] for i in (0, 1, 3, 12, 14)] + BIG_CASES)
def test_implicit_forward_with_tf32_within_its_tolerance(case, relu, kernel, tf32_off):
    x, w, b, *geo = _data(case, seed=8)
    args = _gpu_args(x, w, b, *geo)
    kernel("implicit")
    fp32 = host(CUDA.conv2d_forward(*args, relu))
    try:
        CUDA.set_tf32(True)
        y = host(CUDA.conv2d_forward(*args, relu))
        again = host(CUDA.conv2d_forward(*args, relu))
    finally:
        CUDA.set_tf32(False)
    k, c, kh, kw = w.shape
    expected = C.conv2d_forward(x, w, b, *geo, relu)
    tol = 8 * TF32_U * math.sqrt(c * kh * kw) * float(np.abs(expected).max())
    np.testing.assert_allclose(y, expected, rtol=0, atol=tol)
    np.testing.assert_array_equal(again, y)
    assert np.abs(y - fp32).max() > 0  # the inputs were rounded: the TF32 path ran


def test_the_hook_round_trips_and_names_its_choices(kernel):
    assert CUDA._conv_forward_kernel() == "auto"
    for name in ("implicit", "im2col", "auto", "implicit"):
        kernel(name)
        assert CUDA._conv_forward_kernel() == name
    with raises_exactly(ValueError,
                        "kernel must be 'auto', 'im2col' or 'implicit'; got 'cudnn'"):
        CUDA._set_conv_forward_kernel("cudnn")
    with raises_exactly(ValueError, "kernel must be 'auto', 'im2col' or 'implicit'; got ''"):
        CUDA._set_conv_forward_kernel("")
    with raises_exactly(TypeError, "kernel must be a str; got int"):
        CUDA._set_conv_forward_kernel(1)
    assert CUDA._conv_forward_kernel() == "implicit"  # unchanged by the refused calls


def test_the_backward_is_unchanged_by_the_forward_choice(kernel, tf32_off):
    # The backward keeps its im2col + cuBLAS path under any forward choice: its results equal
    # those under 'im2col' bit for bit.
    x, w, b, *geo = _data((2, 3, 7, 9, 4, 3, 3, 1, 1, 1, True), seed=5)
    args = _gpu_args(x, w, b, *geo)
    dy = dev(rand32(np.random.default_rng(6), 2, 4, 7, 9).astype(np.float32))
    grads = {}
    for name in ("im2col", "implicit"):
        kernel(name)
        grads[name] = [host(g) for g in CUDA.conv2d_backward(args[0], args[1], dy, *geo,
                                                             True, True, None)]
    for a, e in zip(grads["implicit"], grads["im2col"]):
        np.testing.assert_array_equal(a, e)
