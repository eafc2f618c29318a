"""Softmax cross-entropy on the GPU against its CPU twin (marked `cuda`: skipped with the reason
where no GPU is usable): labels, one-hot and soft targets against the CPU's float64 with a
tolerance scaled by the reduction, and the device-side checks of the targets with the CPU
binding's whole messages. Outputs are poisoned (NaN) first on both backends."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, both, dev, host, raises_exactly, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


def _targets(rng, n, c, form):
    t = rng.integers(0, c, size=n).astype(np.int64)
    if form == "labels":
        return t
    out = np.zeros((n, c))
    if form == "onehot":
        out[np.arange(n), t] = 1
    else:
        out = rng.random((n, c)) * (rng.random((n, c)) > 0.3)
    return out


@pytest.mark.parametrize("scale", [3.0, 1e4])
@pytest.mark.parametrize("c", [1, 2, 10, 33, 1000])
@pytest.mark.parametrize("n", [1, 37, 300])
@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_softmax_ce_matches_cpu(n, c, form, scale):
    rng = np.random.default_rng(n * 1000 + c)
    z = scale * rand(rng, n, c)
    t = _targets(rng, n, c, form)
    cl, gl = both("softmax_cross_entropy_forward", z, t)
    assert gl.shape == ()
    assert np.isfinite(gl)
    assert_close(gl, cl, reduction=n * c, factor=64.0)
    cd, gd = both("softmax_cross_entropy_backward", z, t, 0.5)
    assert_close(gd, cd, reduction=c, factor=64.0)


@pytest.mark.parametrize("c", [1, 10, 33, 1000])
@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_forward_backward_kernel_gives_the_separate_kernels_bits(c, form):
    rng = np.random.default_rng(c)
    for n in (1, 37, 300):
        z = dev((3 * rand(rng, n, c)).astype(np.float32))
        t = _targets(rng, n, c, form)
        t = dev(t if form == "labels" else t.astype(np.float32))
        for dloss in (1.0, 0.5):
            loss, dz = CUDA.softmax_cross_entropy_forward_backward(z, t, dloss)
            assert host(loss).tobytes() == host(CUDA.softmax_cross_entropy_forward(z, t)).tobytes()
            assert (host(dz).tobytes()
                    == host(CUDA.softmax_cross_entropy_backward(z, t, dloss)).tobytes())


def test_forward_backward_defers_a_bad_label_like_the_others():
    z = dev(np.zeros((4, 3), np.float32))
    loss, dz = CUDA.softmax_cross_entropy_forward_backward(z, dev(np.array([0, 4, 1, 2])))
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label 4 at row 1"):
        host(dz)
    assert np.isnan(host(loss))  # the bad row's loss is NaN, as the forward kernel makes it


def test_softmax_ce_rejects_out_of_range_label_on_device():
    # The kernels flag a bad label without stopping the host; the error is raised at the next
    # check point: check_errors(), synchronize() or a copy to the host (the result's included).
    z = dev(np.zeros((4, 3), np.float32))
    message = "t must hold labels in [0, 3) (z's classes C); got label 3 at row 2"
    for t in (np.array([0, 1, 3, 2]), np.array([0, 1, 3, -1]), np.array([0, 1, 3, 5])):
        td = dev(t.astype(np.int64))
        loss = CUDA.softmax_cross_entropy_forward(z, td)
        with raises_exactly(ValueError, message):
            host(loss)
        CUDA.softmax_cross_entropy_backward(z, td, 1.0)
        with raises_exactly(ValueError, message):
            CUDA.synchronize()
        CUDA.softmax_cross_entropy_forward(z, td)
        with raises_exactly(ValueError, message):
            CUDA.check_errors()
        CUDA.check_errors()  # each error is raised once
    # the first bad row wins wherever it is, the last included, and negative labels too
    CUDA.softmax_cross_entropy_forward(z, dev(np.array([0, 1, 2, -1], np.int64)))
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label -1 at row 3"):
        CUDA.check_errors()
    CUDA.softmax_cross_entropy_backward(z, dev(np.array([9, 1, 2, -1], np.int64)), 1.0)
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label 9 at row 0"):
        CUDA.check_errors()
    # the same words as the CPU binding's, which raises at the call
    with raises_exactly(ValueError, message):
        C.softmax_cross_entropy_forward(np.zeros((4, 3), np.float32), np.array([0, 1, 3, 2]))


def test_deferred_errors_come_in_call_order_and_clean_calls_add_none():
    z = dev(np.zeros((4, 3), np.float32))
    good, bad5, bad7 = (dev(np.array(t, np.int64)) for t in ([0, 1, 2, 0], [5, 0, 0, 0],
                                                                [0, 7, 0, 0]))
    for _ in range(3):
        CUDA.softmax_cross_entropy_forward(z, good)
    CUDA.softmax_cross_entropy_forward(z, bad7)
    CUDA.softmax_cross_entropy_forward(z, bad5)
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label 7 at row 1"):
        CUDA.check_errors()
    CUDA.check_errors()  # the later error went with it: one report per check
    # More calls than the ledger has slots: the oldest are checked when it fills, and a clean
    # run of them raises nothing.
    for _ in range(2500):
        CUDA.softmax_cross_entropy_forward(z, good)
    CUDA.check_errors()
    slots = CUDA.deferred_check_slots
    for _ in range(slots):
        CUDA.softmax_cross_entropy_forward(z, bad5)
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label 5 at row 0"):
        CUDA.softmax_cross_entropy_forward(z, good)  # finds the ledger full: checks it first
    CUDA.check_errors()


@pytest.mark.parametrize("value, shown", [(-1.0, "-1"), (np.nan, "nan"), (np.inf, "inf"),
                                          (-0.25, "-0.25")])
def test_softmax_ce_rejects_bad_target_weights_on_device(value, shown):
    z = dev(np.zeros((4, 3), np.float32))
    t = np.full((4, 3), 1 / 3, np.float32)
    t[2, 1] = value
    t[3, 0] = -5  # a later bad weight: the first in row-major order is reported
    message = f"t must hold finite target weights >= 0; got {shown} at row 2, column 1"
    CUDA.softmax_cross_entropy_forward(z, dev(t))
    with raises_exactly(ValueError, message):
        CUDA.check_errors()
    CUDA.softmax_cross_entropy_backward(z, dev(t), 1.0)
    with raises_exactly(ValueError, message):
        CUDA.check_errors()
    ok = np.zeros((4, 3), np.float32)
    ok[:, 0] = -0.0  # negative zero is >= 0
    ok[:, 1] = 1
    assert np.isfinite(host(CUDA.softmax_cross_entropy_forward(z, dev(ok))))


def test_softmax_ce_on_row_slices_of_device_arrays():
    # Views from slicing feed the kernels: the batch's rows [3, 7) of a device dataset.
    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 4)).astype(np.float32)
    t = rng.integers(0, 4, 10).astype(np.int64)
    zd, td = dev(z), dev(t)
    want = C.softmax_cross_entropy_forward(z[3:7].astype(np.float64), t[3:7])
    got = host(CUDA.softmax_cross_entropy_forward(zd[3:7], td[3:7]))
    assert_close(got, want, reduction=16, factor=64.0)
    t[5] = 4
    CUDA.softmax_cross_entropy_forward(zd[3:7], dev(t)[3:7])
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 4) (z's classes C); got label 4 at row 2"):
        CUDA.check_errors()


def test_autograd_takes_the_fused_gradient_for_seed_1_and_the_backward_kernel_otherwise():
    import fastconv as fc

    rng = np.random.default_rng(4)
    z = rand(rng, 37, 10).astype(np.float32)
    t = dev(rng.integers(0, 10, 37).astype(np.int64))
    zv = fc.Variable(dev(z))
    for seed in (1.0, 2.5):
        g = fc.softmax_cross_entropy(zv, t).grad(initial=np.float32(seed)).get(zv)
        want = CUDA.softmax_cross_entropy_backward(dev(z), t, seed)
        assert host(g).tobytes() == host(want).tobytes()
