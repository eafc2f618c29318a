"""Conv autotuning (fastconv.set_conv_autotune; csrc/cuda/conv_choice.cpp): the first call of a
shape times im2col + cuBLAS against the implicit-GEMM kernels and keeps the fastest.

Which candidate wins is the device's business (on the emulator, timings of plain CPU code), so
these tests check what holds whichever wins: one timing per shape and pass, the choice is the
fastest median, the timed call's result and every later call's are the chosen kernels' bits, and
a remembered choice (_remember_conv_choice, as a saved table would give) is the one that runs.
Marked `cuda`; outputs poisoned.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv._native import C, CUDA
from helpers import dev, host, pairs, raises_exactly, rand32
from test_conv import CASES as CONV_CASES

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

ORDER = ["im2col", "implicit", "implicit_dx", "implicit_both"]  # ties go to the earlier
# Where the kernels' sums are long enough to differ in their last bits (c*kh*kw of 144 and 600),
# so that a result shows which kernel made it.
LONG_CASES = [CONV_CASES[2], (2, 24, 9, 8, 20, 5, 5, 1, 2, 1, True)]
SOME_CASES = [CONV_CASES[i] for i in (0, 1, 3, 12, 14)] + LONG_CASES


@pytest.fixture
def autotune(tf32_off):
    """Autotuning on with nothing remembered and both kernel switches on 'auto'; all restored."""
    CUDA._set_conv_forward_kernel("auto")
    CUDA._set_conv_backward_kernel("auto")
    CUDA._clear_conv_autotune()
    fc.set_conv_autotune(True)
    yield
    fc.set_conv_autotune(False)
    CUDA._clear_conv_autotune()
    CUDA._set_conv_forward_kernel("auto")
    CUDA._set_conv_backward_kernel("auto")


def _dev32(a):
    return dev(a.astype(np.float32))


def _args(case, seed=0):
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    x, w = _dev32(rand32(rng, n, c, h, w_)), _dev32(rand32(rng, k, c, kh, kw))
    b = _dev32(rand32(rng, k)) if bias else None
    return x, w, b, pairs(stride), pairs(padding), pairs(dilation)


def _forward(args, relu=True):
    x, w, b, *geo = args
    return host(CUDA.conv2d_forward(x, w, b, *geo, relu))


def _backward(args, relu_y=None, need_dx=True):
    x, w, b, *geo = args
    dy_shape = C.conv2d_output_shape(tuple(x.shape), tuple(w.shape), *geo)
    dy = _dev32(rand32(np.random.default_rng(9), *dy_shape))
    return [None if a is None else host(a)
            for a in CUDA.conv2d_backward(x, w, dy, *geo, need_dx, b is not None, relu_y)]


def _forced(pass_, name, run):
    """run() with the pass's kernels forced to `name` ('im2col' or 'implicit')."""
    setter = CUDA._set_conv_forward_kernel if pass_ == "forward" else CUDA._set_conv_backward_kernel
    setter(name)
    try:
        return run()
    finally:
        setter("auto")


def _lt_calls():
    s = CUDA._gemm_epilogue_stats()
    return s["fused"] + s["refused"]


def _fastest(row):
    ms = row["median_ms"]
    return min(ms, key=lambda name: (ms[name], ORDER.index(name)))


def test_off_by_default_nothing_is_timed_and_im2col_runs(tf32_off):
    assert fc.conv_autotune() is False
    CUDA._clear_conv_autotune()
    args = _args(CONV_CASES[1])
    y = _forward(args)
    assert CUDA._conv_autotune_table() == []
    np.testing.assert_array_equal(y, _forced("forward", "im2col", lambda: _forward(args)))


@pytest.mark.parametrize("case", SOME_CASES)
def test_the_forward_is_timed_once_and_runs_the_fastest(case, autotune):
    args = _args(case)
    x, w = args[0], args[1]
    y = _forward(args)
    rows = CUDA._conv_autotune_table()
    assert len(rows) == 1
    row = rows[0]
    assert (row["pass"], row["x"], row["w"], row["need_dx"], row["tf32"]) == (
        "forward", tuple(x.shape), tuple(w.shape), False, False)
    assert (row["stride"], row["padding"], row["dilation"]) == tuple(args[3:])
    assert set(row["median_ms"]) == {"im2col", "implicit"}
    assert all(ms > 0 for ms in row["median_ms"].values())
    assert row["chosen"] == _fastest(row)
    calls = _lt_calls()
    again = _forward(args)
    assert (_lt_calls() > calls) == (row["chosen"] == "im2col")  # only im2col has a GEMM
    assert CUDA._conv_autotune_table() == rows  # not timed again
    chosen = _forced("forward", row["chosen"], lambda: _forward(args))
    np.testing.assert_array_equal(y, chosen)  # the timed call returns the chosen kernel's bits
    np.testing.assert_array_equal(again, chosen)


@pytest.mark.parametrize("choice", ["im2col", "implicit"])
def test_a_remembered_forward_choice_is_the_one_that_runs(choice, autotune):
    case = CONV_CASES[1]
    args = _args(case)
    x, w, _, *geo = args
    CUDA._remember_conv_choice("forward", x.shape, w.shape, *geo, False, False, choice)
    calls = _lt_calls()
    y = _forward(args)
    # im2col's GEMM goes through cuBLASLt (asked, whether or not it fuses); the implicit kernel
    # has none.
    assert (_lt_calls() - calls > 0) == (choice == "im2col")
    assert [r["chosen"] for r in CUDA._conv_autotune_table()] == [choice]  # nothing timed
    np.testing.assert_array_equal(y, _forced("forward", choice, lambda: _forward(args)))


def test_tf32_and_the_pass_are_remembered_apart(autotune):
    args = _args(CONV_CASES[3])
    _forward(args)
    fc.set_tf32(True)
    _forward(args)
    _backward(args)
    rows = CUDA._conv_autotune_table()
    assert [(r["pass"], r["tf32"]) for r in rows] == [("forward", False), ("forward", True),
                                                      ("backward", True)]
    _forward(args)
    assert len(CUDA._conv_autotune_table()) == 3


@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize("case", SOME_CASES)
def test_the_backward_is_timed_once_and_runs_the_fastest(case, need_dx, autotune):
    args = _args(case)
    grads = _backward(args, need_dx=need_dx)
    (row,) = CUDA._conv_autotune_table()
    assert (row["pass"], row["need_dx"]) == ("backward", need_dx)
    expected = {"im2col", "implicit", "implicit_dx", "implicit_both"} if need_dx else {
        "im2col", "implicit"}
    assert set(row["median_ms"]) == expected
    assert row["chosen"] == _fastest(row)
    again = _backward(args, need_dx=need_dx)
    assert len(CUDA._conv_autotune_table()) == 1
    # Each half is its own kernel's whatever the other half runs: dw and db from the wgrad
    # chosen, dx from the dgrad chosen.
    implicit = _forced("backward", "implicit", lambda: _backward(args, need_dx=need_dx))
    im2col = _forced("backward", "im2col", lambda: _backward(args, need_dx=need_dx))
    own_w = row["chosen"] in ("implicit", "implicit_both")
    own_x = row["chosen"] in ("implicit_dx", "implicit_both")
    expected = [(implicit if own_x else im2col)[0]] + (implicit if own_w else im2col)[1:]
    for got in (grads, again):
        for g, e in zip(got, expected):
            if e is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, e)


def test_a_capture_never_times(autotune):
    args = _args(CONV_CASES[1])
    step = fc.graph_step(lambda x: CUDA.conv2d_forward(x, *args[1:], True))
    x = args[0]
    step(x)  # the warm-up, eager: timed
    assert len(CUDA._conv_autotune_table()) == 1
    CUDA._clear_conv_autotune()
    y = host(step(x))  # captured: nothing timed, so im2col
    assert step.graphs() == 1 and CUDA._conv_autotune_table() == []
    np.testing.assert_array_equal(y, _forced("forward", "im2col", lambda: _forward(args)))


def test_remembering_checks_its_arguments(autotune):
    geo = ((1, 1), (0, 0), (1, 1))
    with raises_exactly(ValueError, "pass must be 'forward' or 'backward'; got 'sideways'"):
        CUDA._remember_conv_choice("sideways", (1, 1, 4, 4), (1, 1, 3, 3), *geo, False, False,
                                   "im2col")
    with raises_exactly(ValueError, "chosen must be a candidate of the forward pass ('im2col', "
                        "'implicit'); got 'implicit_dx'"):
        CUDA._remember_conv_choice("forward", (1, 1, 4, 4), (1, 1, 3, 3), *geo, False, False,
                                   "implicit_dx")
    with raises_exactly(TypeError, "need_dx must be a bool; got int"):
        CUDA._remember_conv_choice("backward", (1, 1, 4, 4), (1, 1, 3, 3), *geo, 1, False,
                                   "im2col")
    assert CUDA._conv_autotune_table() == []
