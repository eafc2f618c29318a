"""The implicit-GEMM conv2d data gradient (csrc/cuda/conv_dgrad_implicit.cu) against the CPU twin
in float64, chosen through the private _cuda._set_conv_backward_kernel hook (marked `cuda`;
outputs poisoned, so an element the kernel leaves unwritten, such as an input pixel no tap
reaches, fails).

Only dx is this kernel's: dw and db are checked against the CPU whichever kernel computes them,
so the tests hold whatever the implicit wgrad does. FP32 FMA is checked at float32's tolerance
(reduction = k*kh*kw), TF32 at TF32's. On the emulator the tensor-core step runs its twin.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, cuda_emulated, dev, host, pairs, rand32
from test_conv import CASES as CONV_CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # launch_count

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs", "tf32_off")]

TF32_U = 2.0 ** -11  # TF32 keeps 10 mantissa bits: unit roundoff of the products' inputs

# The dgrad's GEMM is c (rows) x n*h*w (columns, split by stride phase) x k*kh*kw (reduction).
# Beyond test_conv's matrix: several tiles in every dimension with partial last tiles (70 input
# channels: 64 + 6; 3*19*23 = 1311 pixels: 20 tiles of 64 + 31; 37*9 = 333 reduction rows: 20
# chunks of 16 + 13), the small-c tile, one output channel (9 rows, under a chunk), one input
# channel at batch 1, 1x1, stride 2 (phases with 1 and 2 taps), stride 2 with dilation 2 (half
# the phases reached by no tap), stride 3 with dilation 2 (taps 3 apart), a 7x7 stride-2 stem,
# and every pair asymmetric.
# (n, c, h, w, k, kh, kw, stride, padding, dilation, bias)
BIG_CASES = [
    (3, 70, 19, 23, 37, 3, 3, 1, 1, 1, True),
    (1, 33, 17, 21, 5, 3, 3, 2, 1, 1, True),
    (2, 32, 20, 19, 1, 3, 3, 1, 1, 1, True),
    (1, 1, 13, 11, 24, 3, 3, 1, 1, 1, False),
    (1, 40, 13, 11, 24, 1, 1, 1, 0, 1, False),
    (2, 7, 15, 14, 6, 3, 3, 2, (1, 0), 2, True),
    (2, 4, 16, 17, 9, 5, 5, 3, 2, 2, True),
    (1, 3, 21, 22, 8, 7, 7, 2, 3, 1, False),
    (1, 5, 12, 37, 3, 5, 3, (1, 2), 2, (2, 1), False),
]


@pytest.fixture
def kernel():
    """Sets the conv backward kernels for the test, 'auto' restored after."""
    yield lambda name: CUDA._set_conv_backward_kernel(name)
    CUDA._set_conv_backward_kernel("auto")


def _data(case, relu, seed=0):
    """x, w, dy and relu_y (None, or >= 0 with about a third exact zeros: the mask's cut)."""
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    geo = pairs(stride), pairs(padding), pairs(dilation)
    rng = np.random.default_rng(seed)
    x, w = rand32(rng, n, c, h, w_), rand32(rng, k, c, kh, kw)
    oh, ow = (C.conv2d_forward(x[:1, :, :, :], w, None, *geo, False)).shape[2:]
    dy = rand32(rng, n, k, oh, ow)
    relu_y = np.maximum(rand32(rng, n, k, oh, ow) + 0.3, 0) if relu else None
    return x, w, dy, relu_y, geo, bias


def _gpu(x, w, dy, relu_y, geo, bias):
    return [None if g is None else host(g) for g in CUDA.conv2d_backward(
        dev(x.astype(np.float32)), dev(w.astype(np.float32)), dev(dy.astype(np.float32)), *geo,
        True, bias, None if relu_y is None else dev(relu_y.astype(np.float32)))]


def _reductions(case, dy):
    n, _, _, _, k, kh, kw = case[:7]
    return k * kh * kw, n * dy.shape[2] * dy.shape[3]


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", CONV_CASES + BIG_CASES)
def test_implicit_dgrad_matches_cpu(case, relu, kernel):
    x, w, dy, relu_y, geo, bias = _data(case, relu)
    kernel("implicit")
    dx, dw, db = _gpu(x, w, dy, relu_y, geo, bias)
    cpu = C.conv2d_backward(x, w, dy, *geo, True, bias, relu_y)
    rx, rw = _reductions(case, dy)
    assert_close(dx, cpu[0], reduction=rx)
    assert_close(dw, cpu[1], reduction=rw)
    if bias:
        assert_close(db, cpu[2], reduction=rw)
    # The same bits again: one thread an element, a fixed summation order.
    np.testing.assert_array_equal(_gpu(x, w, dy, relu_y, geo, bias)[0], dx)


def _launches():
    import launch_count

    return launch_count.counts()[0]


@pytest.mark.parametrize("case, phases", [(BIG_CASES[0], 1), (BIG_CASES[1], 4),
                                          (BIG_CASES[6], 9), (CONV_CASES[8], 12)])
def test_the_implicit_dgrad_is_one_kernel_a_stride_phase(case, phases, kernel):
    # dx costs one launch per phase (ih % sh, iw % sw) and no GEMM: asking for dx adds exactly
    # those launches, whatever computes dw.
    if not cuda_emulated():
        pytest.skip("launches are counted on the emulator")
    x, w, dy, _, geo, _ = _data(case, False, seed=1)
    args = (dev(x.astype(np.float32)), dev(w.astype(np.float32)), dev(dy.astype(np.float32)),
            *geo)
    kernel("implicit")
    CUDA._set_poison_outputs(False)  # no fill launch for dx
    try:
        added = []
        for need_dx in (False, True):
            before = _launches()
            CUDA.conv2d_backward(*args, need_dx, False, None)
            added.append(_launches() - before)
    finally:
        CUDA._set_poison_outputs(True)
    assert added[1] - added[0] == phases


@pytest.mark.parametrize("tf32", [False, True], ids=["fp32", "tf32"])
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[14]] + BIG_CASES[:3] + BIG_CASES[5:7])
def test_the_int64_kernels_give_the_int32_kernels_bits(case, tf32, kernel):
    # The tests' sizes all fit in int32; the hook runs the int64 (PlainDiv) kernels on them, on
    # the 3x3 and general tap counts, both tile heights, FP32 and TF32: the same bits.
    x, w, dy, relu_y, geo, bias = _data(case, True, seed=7)
    kernel("implicit")
    CUDA.set_tf32(tf32)
    try:
        dx32 = _gpu(x, w, dy, relu_y, geo, bias)[0]
        CUDA._set_conv_implicit_index64(True)
        dx64 = _gpu(x, w, dy, relu_y, geo, bias)[0]
    finally:
        CUDA._set_conv_implicit_index64(False)
        CUDA.set_tf32(False)
    np.testing.assert_array_equal(dx64, dx32)
    if not tf32:
        expected = C.conv2d_backward(x, w, dy, *geo, True, bias, relu_y)[0]
        assert_close(dx64, expected, reduction=_reductions(case, dy)[0])


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", [CONV_CASES[i] for i in (1, 3, 9, 14)] + BIG_CASES[:2])
def test_implicit_dgrad_with_tf32_within_its_tolerance(case, relu, kernel):
    x, w, dy, relu_y, geo, bias = _data(case, relu, seed=8)
    kernel("implicit")
    fp32 = _gpu(x, w, dy, relu_y, geo, bias)[0]
    try:
        CUDA.set_tf32(True)
        dx = _gpu(x, w, dy, relu_y, geo, bias)[0]
        again = _gpu(x, w, dy, relu_y, geo, bias)[0]
    finally:
        CUDA.set_tf32(False)
    expected = C.conv2d_backward(x, w, dy, *geo, True, bias, relu_y)[0]
    tol = 8 * TF32_U * math.sqrt(_reductions(case, dy)[0]) * float(np.abs(expected).max())
    np.testing.assert_allclose(dx, expected, rtol=0, atol=tol)
    np.testing.assert_array_equal(again, dx)
    assert np.abs(dx - fp32).max() > 0  # the inputs were rounded: the TF32 path ran


def test_the_mask_treats_nan_as_the_cpu_does(kernel):
    # relu_y NaN masks its dy (NaN > 0 is false); a NaN dy where relu_y > 0 passes into the dx
    # elements its taps reach, and only those: the CPU's NaNs, and its values elsewhere.
    case = (2, 5, 9, 8, 6, 3, 3, 2, 1, 1, False)
    x, w, dy, relu_y, geo, bias = _data(case, True, seed=9)
    relu_y[0, 1, 2, 3] = np.nan
    dy[0, 1, 2, 3] = np.nan       # masked by the NaN above
    relu_y[1, 4, 1, 1] = 1.0
    dy[1, 4, 1, 1] = np.nan       # kept
    dy[1, 2, 3, 0] = np.nan
    relu_y[1, 2, 3, 0] = 0.0      # masked by a zero
    kernel("implicit")
    dx = _gpu(x, w, dy, relu_y, geo, bias)[0]
    expected = C.conv2d_backward(x, w, dy, *geo, True, bias, relu_y)[0]
    nan = np.isnan(expected)
    assert nan[1].any() and not nan[0].any()
    np.testing.assert_array_equal(np.isnan(dx), nan)
    assert_close(np.where(nan, 0, dx), np.where(nan, 0, expected), reduction=6 * 9)


def test_dw_and_db_do_not_depend_on_the_dgrad_choice(kernel):
    # Whichever kernel computes dx, dw and db match the CPU, with and without the mask, and
    # asking for dx does not change their bits.
    case = BIG_CASES[1]
    for relu in (False, True):
        x, w, dy, relu_y, geo, bias = _data(case, relu, seed=10)
        cpu = C.conv2d_backward(x, w, dy, *geo, True, True, relu_y)
        args = (dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                dev(dy.astype(np.float32)), *geo)
        mask = None if relu_y is None else dev(relu_y.astype(np.float32))
        for name in ("im2col", "implicit"):
            kernel(name)
            with_dx = [host(g) for g in CUDA.conv2d_backward(*args, True, True, mask)[1:]]
            without = [host(g) for g in CUDA.conv2d_backward(*args, False, True, mask)[1:]]
            for g, again, e in zip(with_dx, without, cpu[1:]):
                np.testing.assert_array_equal(again, g)
                assert_close(g, e, reduction=_reductions(case, dy)[1])
