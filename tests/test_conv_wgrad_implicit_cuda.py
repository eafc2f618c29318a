"""The implicit-GEMM conv2d weight gradient (csrc/cuda/conv_wgrad_implicit.cu: dw and db) against
the CPU twin in float64, chosen through the private _cuda._set_conv_backward_kernel hook (marked
`cuda`; outputs poisoned, so an element the kernels leave unwritten fails).

dx is compared too, so that a change in how the backward's halves are combined shows here, but
whichever kernel computes dx, these tests are about dw and db. FP32 runs are checked at float32's
tolerance for a reduction of n*oh*ow terms; TF32 runs at TF32's. The reduction is split into
slices whose number depends on the device's SM count (the emulator reports 2): the cases below
are chosen so that on the emulator some take one slice and some several, with a partial last one.
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

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

TF32_U = 2.0 ** -11  # TF32 keeps 10 mantissa bits: unit roundoff of the products' inputs

# Beyond test_conv's matrix (n, c, h, w, k, kh, kw, stride, padding, dilation, bias). Slices on
# the emulator (2 SMs) in the comments: slice_length's rule, mirrored by _slices below.
BIG_CASES = [
    (4, 3, 30, 30, 8, 3, 3, 1, 1, 1, True),            # K = 3600, one tile: 8 slices, last 352/464
    (2, 9, 23, 23, 40, 3, 3, 1, 1, 1, True),           # 2 column tiles (64 + 17), 40 of a 64-row
                                                       # tile: 4 slices, last 242/272
    (3, 37, 11, 13, 70, 3, 3, 1, 1, 1, True),          # 6 x 2 tiles, both last partial: 1 slice
    (1, 1, 40, 41, 5, 3, 3, 1, 1, 1, False),           # batch 1, one channel: 7 slices, last 104
    (2, 24, 13, 11, 40, 1, 1, 1, 0, 1, False),         # 1x1: a plain GEMM
    (3, 4, 41, 39, 12, 3, 3, 2, 1, 1, True),           # stride 2, K = 1260: 5 slices
    (2, 6, 15, 14, 67, 3, 3, 2, (1, 0), 2, True),      # stride 2 with dilation 2
    (1, 3, 12, 37, 5, 5, 3, (1, 2), 2, (2, 1), False),  # every pair mixed
    (2, 3, 30, 30, 70, 3, 3, 1, 1, 1, True),           # 2 row tiles (64 + 6): 4 slices, last 408
    (2, 8, 20, 20, 24, 3, 3, 1, 1, 1, True),           # 2 column tiles of the 32-row tile: 4
                                                       # slices, the last 2 chunks
]
CASES = CONV_CASES + BIG_CASES


@pytest.fixture
def kernel():
    """Sets the conv backward kernel for the test, 'auto' restored after."""
    yield lambda name: CUDA._set_conv_backward_kernel(name)
    CUDA._set_conv_backward_kernel("auto")


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _data(case, seed=0):
    """x, w, dy and a ReLU output as its mask (a third of it exactly 0, a third negative), float64
    values that float32 holds, with the geometry as the bindings take it."""
    n, c, h, w_, k, kh, kw, stride, padding, dilation, _ = case
    st, pa, di = pairs(stride), pairs(padding), pairs(dilation)
    oh = _out_size(h, kh, st[0], pa[0], di[0])
    ow = _out_size(w_, kw, st[1], pa[1], di[1])
    rng = np.random.default_rng(seed)
    x, w, dy = rand32(rng, n, c, h, w_), rand32(rng, k, c, kh, kw), rand32(rng, n, k, oh, ow)
    relu_y = np.abs(rand32(rng, n, k, oh, ow))
    pick = rng.integers(0, 3, size=relu_y.shape)
    relu_y[pick == 0] = 0.0
    relu_y[pick == 1] *= -1.0
    return x, w, dy, relu_y, (st, pa, di)


def _gpu(x, w, dy, relu_y, geo, need_dx=True, need_db=True, relu=True):
    out = CUDA.conv2d_backward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                               dev(dy.astype(np.float32)), *geo, need_dx, need_db,
                               dev(relu_y.astype(np.float32)) if relu else None)
    return [host(a) for a in out]


def _slices(case):
    """The number of slices conv_wgrad_implicit.cu's slice_length makes on this device."""
    n, c, h, w_, k, kh, kw, stride, padding, dilation, _ = case
    st, pa, di = pairs(stride), pairs(padding), pairs(dilation)
    pixels = n * _out_size(h, kh, st[0], pa[0], di[0]) * _out_size(w_, kw, st[1], pa[1], di[1])
    sms = CUDA.device_properties()["multiprocessors"]
    tm = 2 if k <= 32 else 4
    tiles = max(1, _ceil(c * kh * kw, 64)) * _ceil(k, 16 * tm)
    want = max(1, _ceil(4 * sms, tiles))
    length = max(_ceil(_ceil(max(pixels, 1), want), 16) * 16, 256)
    return max(1, _ceil(pixels, length))


def _ceil(a, b):
    return -(-a // b)


@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu_y"])
@pytest.mark.parametrize("case", CASES)
def test_wgrad_matches_cpu(case, relu, kernel, tf32_off):
    x, w, dy, relu_y, geo = _data(case)
    n, c, _, _, k, kh, kw = case[:7]
    kernel("implicit")
    got = _gpu(x, w, dy, relu_y, geo, relu=relu)
    want = C.conv2d_backward(x, w, dy, *geo, True, True, relu_y if relu else None)
    plane = dy.shape[2] * dy.shape[3]
    for g, e, r in zip(got, want, (k * kh * kw, n * plane, n * plane)):
        assert g.shape == e.shape
        assert_close(g, e, reduction=r)
    # The same bits again: a slicing and summation order fixed by the shape and the device.
    for a, e in zip(_gpu(x, w, dy, relu_y, geo, relu=relu), got):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[13]] + BIG_CASES[:4])
def test_dw_does_not_depend_on_what_else_is_asked(case, kernel, tf32_off):
    # db is summed beside dw from the same loads, and dx is another kernel's: dw's bits are the
    # same with or without either, and db's with or without dx.
    x, w, dy, relu_y, geo = _data(case, seed=3)
    kernel("implicit")
    _, dw, db = _gpu(x, w, dy, relu_y, geo)
    none_dx, dw_only, none_db = _gpu(x, w, dy, relu_y, geo, need_dx=False, need_db=False)
    assert none_dx is None and none_db is None
    np.testing.assert_array_equal(dw_only, dw)
    _, dw2, db2 = _gpu(x, w, dy, relu_y, geo, need_dx=False)
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("tf32", [False, True], ids=["fp32", "tf32"])
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[14]] + BIG_CASES[:4])
def test_the_int64_kernels_give_the_int32_kernels_bits(case, tf32, kernel, tf32_off):
    # Only sizes past 2**30 elements take the int64 (PlainDiv) kernels on their own; the forward's
    # hook runs them here too. Same slices, products and order: the same bits.
    x, w, dy, relu_y, geo = _data(case, seed=7)
    kernel("implicit")
    CUDA.set_tf32(tf32)
    try:
        g32 = _gpu(x, w, dy, relu_y, geo, need_dx=False)
        CUDA._set_conv_implicit_index64(True)
        g64 = _gpu(x, w, dy, relu_y, geo, need_dx=False)
    finally:
        CUDA._set_conv_implicit_index64(False)
        CUDA.set_tf32(False)
    for a, e in zip(g64[1:], g32[1:]):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("case", [CONV_CASES[i] for i in (0, 1, 3, 12, 13)] + BIG_CASES)
def test_wgrad_with_tf32_within_its_tolerance(case, kernel, tf32_off):
    x, w, dy, relu_y, geo = _data(case, seed=8)
    n = case[0]
    kernel("implicit")
    _, fp32_dw, fp32_db = _gpu(x, w, dy, relu_y, geo, need_dx=False)
    try:
        CUDA.set_tf32(True)
        _, dw, db = _gpu(x, w, dy, relu_y, geo, need_dx=False)
        _, dw2, db2 = _gpu(x, w, dy, relu_y, geo, need_dx=False)
    finally:
        CUDA.set_tf32(False)
    _, want_dw, _ = C.conv2d_backward(x, w, dy, *geo, False, True, relu_y)
    terms = n * dy.shape[2] * dy.shape[3]
    tol = 8 * TF32_U * math.sqrt(terms) * float(np.abs(want_dw).max())
    np.testing.assert_allclose(dw, want_dw, rtol=0, atol=tol)
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
    # db adds dy' itself, never rounded to TF32: the FP32 run's bits.
    np.testing.assert_array_equal(db, fp32_db)
    if np.count_nonzero(want_dw) > 4:
        assert np.abs(dw - fp32_dw).max() > 0  # the inputs were rounded: the TF32 path ran


@pytest.mark.parametrize("case", [CONV_CASES[1], BIG_CASES[0], BIG_CASES[2], BIG_CASES[3]])
def test_wgrad_is_one_kernel_or_two(case, kernel, tf32_off):
    # One kernel where one slice covers the reduction; several slices add their sum kernel. No
    # GEMM-layout copy of dy, no im2col, no separate bias-gradient pass, all of which the im2col
    # path launches (its cuBLAS GEMMs are not counted as launches).
    if not cuda_emulated():
        pytest.skip("launches are counted on the emulator")
    import launch_count

    x, w, dy, relu_y, geo = _data(case, seed=5)
    counts = {}
    CUDA._set_poison_outputs(False)  # no fill launch before the kernels
    try:
        for name in ("im2col", "implicit"):
            kernel(name)
            before = launch_count.counts()[0]
            _gpu(x, w, dy, relu_y, geo, need_dx=False)
            counts[name] = launch_count.counts()[0] - before
    finally:
        CUDA._set_poison_outputs(True)
    slices = _slices(case)
    assert counts["implicit"] == (1 if slices == 1 else 2)
    assert counts["im2col"] > counts["implicit"]
    # On the emulator's 2 SMs these cases cover both: [1 slice, 8, 1, 7].
    if CUDA.device_properties()["multiprocessors"] == 2:
        assert [_slices(c) for c in (CONV_CASES[1], BIG_CASES[0], BIG_CASES[2],
                                     BIG_CASES[3])] == [1, 8, 1, 7]



@pytest.mark.parametrize("case", [CONV_CASES[1], BIG_CASES[0]])
def test_the_mask_drops_dy_where_relu_y_is_not_positive(case, kernel, tf32_off):
    # As the im2col path and the CPU twin: a masked term is left out, not multiplied by 0, so a
    # NaN or inf of dy there (or a NaN of relu_y) leaves no trace in dw and db.
    x, w, dy, relu_y, geo = _data(case, seed=9)
    masked = ~(relu_y > 0)
    dy_bad = dy.copy()
    dy_bad[masked] = np.where(np.arange(masked.sum()) % 2 == 0, np.nan, np.inf)
    relu_bad = relu_y.copy()
    relu_bad[tuple(i[0] for i in np.nonzero(masked))] = np.nan  # one masked position
    kernel("implicit")
    _, dw, db = _gpu(x, w, dy_bad, relu_bad, geo, need_dx=False)
    _, want_dw, want_db = _gpu(x, w, np.where(masked, 0.0, dy), relu_y, geo, need_dx=False)
    np.testing.assert_array_equal(dw, want_dw)
    np.testing.assert_array_equal(db, want_db)
    assert np.isfinite(dw).all() and np.isfinite(db).all()
