"""The multi-tensor updates on the GPU (marked `cuda`: skipped with the reason where no GPU is
usable): bit for bit the single-tensor GPU op on each parameter, and so the CPU's float32, for
one, a few and more tensors than one launch takes (several launches), mixed sizes included; the
GPU's overlap rule (no written array may share memory with any gradient, its own included); and
three steps of the tutorial CNN through step_many equal to the per-variable loop."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
from helpers import dev, host, overlap, raises_exactly
from test_optim_multi import COUNTS, SGD_CONFIGS, adam_both, same_bits, sgd_both, shapes_for
from test_optim_step_many import StepOnly, tutorial_steps

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("cfg", SGD_CONFIGS)
def test_sgd_multi_equals_single_and_cpu_bitwise(n, cfg):
    gpu_multi, gpu_single = sgd_both(np.random.default_rng(n), shapes_for(n), np.float32, cfg,
                                     to=dev, back=host)
    same_bits(gpu_multi, gpu_single)
    cpu_multi, _ = sgd_both(np.random.default_rng(n), shapes_for(n), np.float32, cfg)
    same_bits(gpu_multi, cpu_multi)


@pytest.mark.parametrize("n", COUNTS)
def test_adam_multi_equals_single_and_cpu_bitwise(n):
    gpu_multi, gpu_single = adam_both(np.random.default_rng(n), shapes_for(n), np.float32,
                                      to=dev, back=host)
    same_bits(gpu_multi, gpu_single)
    cpu_multi, _ = adam_both(np.random.default_rng(n), shapes_for(n), np.float32)
    same_bits(gpu_multi, cpu_multi)


def test_empty_lists_and_empty_tensors():
    assert ops.sgd_update_multi([], [], [], 0.1, 0.9) is None
    # Only empty tensors: no launch at all, and nothing to write.
    empty = [[dev(np.zeros(s, np.float32)) for s in ((0,), (3, 0))] for _ in range(4)]
    assert ops.adam_update_multi(*empty, [1, 2]) is None


def zd(shape=(2, 3)):
    return dev(np.zeros(shape, np.float32))


def zds(n, shape=(2, 3)):
    return [zd(shape) for _ in range(n)]


def sgd(params=None, grads=None, velocities=None, **kw):
    params = zds(2) if params is None else params
    grads = zds(len(params)) if grads is None else grads
    return lambda: ops.sgd_update_multi(params, grads, velocities, **kw)


HOST = (" must be a fastconv device array (this is a GPU kernel: host and device arrays cannot "
        "be mixed in one call; move it with fastconv.device.to_device({})); got a numpy (host) "
        "array")


def gpu_bad_calls():
    buf = zd((4, 3))
    same = zd()
    return [
        (TypeError, "params[1]" + HOST.format("params[1]"), sgd([zd(), np.zeros((2, 3))])),
        (TypeError, "grads[0]" + HOST.format("grads[0]"), sgd(zds(2), [np.zeros((2, 3)), zd()])),
        (TypeError, "params[1] must have dtype float32 (the GPU kernels take float32 only; "
         "float64 stays on the CPU: use a numpy array there); got float64",
         sgd([zd(), dev(np.zeros((2, 3)))])),
        (ValueError, "grads[1] must have the shape of params[1] (2, 3); got (3, 2)",
         sgd(zds(2), [zd(), zd((3, 2))])),
        (ValueError, "velocities must be a list of device arrays like params when momentum != 0 "
         "(zeros on the first step); got None with momentum 0.9", sgd(momentum=0.9)),
        (ValueError, "ms must have one entry per parameter (2, as params); got 1",
         lambda: ops.adam_update_multi(zds(2), zds(2), zds(1), zds(2), [1, 1])),
        # unlike the CPU, grads[i] may not be params[i]: threads read it while others write
        (ValueError, overlap("grads[0]", "params[0]", 24, size=24),
         sgd([same, zd()], [same, zd()])),
        (ValueError, overlap("velocities[1]", "grads[0]", 12, size=24),
         sgd(zds(2), [buf[0:2], zd()], [zd(), buf[1:3]], momentum=0.9)),
        (ValueError, overlap("params[1]", "params[0]", 12, size=24), sgd([buf[0:2], buf[1:3]])),
    ]


GPU_BAD_CALLS = 9  # built inside the test: device arrays cannot exist at collection without a GPU


@pytest.mark.parametrize("case", range(GPU_BAD_CALLS))
def test_multi_bad_input_on_the_gpu(case):
    cases = gpu_bad_calls()
    assert len(cases) == GPU_BAD_CALLS
    exc, message, call = cases[case]
    with raises_exactly(exc, message):
        call()


def test_disjoint_views_of_one_buffer_are_fine():
    buf = dev(np.arange(12, dtype=np.float32).reshape(4, 3))
    grads = [dev(np.ones((2, 3), np.float32))] * 2  # one gradient for both: only read
    ops.sgd_update_multi([buf[0:2], buf[2:4]], grads, lr=1.0)
    same_bits([host(buf)], [np.arange(12, dtype=np.float32).reshape(4, 3) - 1])


@pytest.mark.usefixtures("tf32_off")
@pytest.mark.parametrize("make", [lambda: fc.Sgd(lr=0.01, momentum=0.9), lambda: fc.Adam()])
def test_tutorial_cnn_gpu_steps_equal_the_per_variable_loop(make):
    rng = np.random.default_rng(2)
    x = fc.to_device(rng.random((8, 1, 28, 28), dtype=np.float32))
    t = fc.to_device(rng.integers(0, 10, 8).astype(np.int64))
    fc.set_cuda_active(True)
    try:
        looped = StepOnly(make())
        a = tutorial_steps(x, t, make())
        b = tutorial_steps(x, t, looped)
    finally:
        fc.set_cuda_active(False)
    assert looped.calls == 24
    same_bits([p.as_ndarray() for p in a.parameters()], [p.as_ndarray() for p in b.parameters()])
