"""Per-step scalars read from device memory when the kernel runs, so that a launch captured in a
CUDA graph follows what the host writes there before each replay (marked `cuda`): dropout's seed
as a one-element int64 device array, and Adam's bias corrections as a float32 (n, 2) device array.
Each must give the bits of the eager call with the same values: the dropout mask of the int seed
(forward, backward, many shapes, negative int64 values as their uint64 bits), and the update of
adam_update_multi without corrections when the array holds ops.adam_bias_corrections(steps)."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv.ops as ops
from helpers import dev, host, overlap, raises_exactly, rand
from test_optim_multi import adam_both, same_bits, shapes_for

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

SHAPES = [(0,), (1,), (7,), (3, 1000), (2, 3, 5, 7), (4, 1, 28, 28)]
# int64 values and the uint64 seeds they stand for (the bits, as they are).
SEEDS = [(0, 0), (1, 1), (12345, 12345), (2**63 - 1, 2**63 - 1), (-1, 2**64 - 1),
         (-2**63, 2**63)]


def seed_views(value):
    """The forms a device seed comes in: row i of a 1-D array (0-d), and rows [i, i + 1) ((1,))."""
    seeds = dev(np.array([7, value, 9], np.int64))
    return [seeds[1], seeds[1:2]]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.9])
def test_dropout_device_seed_equals_int_seed_bitwise(shape, ratio):
    x = dev(rand(np.random.default_rng(len(shape)), *shape).astype(np.float32))
    for value, seed in SEEDS:
        want_y = host(ops.dropout_forward(x, ratio, seed))
        want_dx = host(ops.dropout_backward(x, ratio, seed))
        for device_seed in seed_views(value):
            assert host(ops.dropout_forward(x, ratio, device_seed)).tobytes() == want_y.tobytes()
            assert host(ops.dropout_backward(x, ratio, device_seed)).tobytes() == \
                want_dx.tobytes()


def test_each_row_of_a_seed_array_is_its_own_seed():
    """The kernel reads the value where it points: rows of one array give their own masks."""
    x = dev(np.ones((64, 65), np.float32))
    seeds = dev(np.array([3, 4], np.int64))
    a, b = host(ops.dropout_forward(x, 0.5, seeds[0])), host(ops.dropout_forward(x, 0.5, seeds[1]))
    assert a.tobytes() == host(ops.dropout_forward(x, 0.5, 3)).tobytes()
    assert b.tobytes() == host(ops.dropout_forward(x, 0.5, 4)).tobytes()
    assert a.tobytes() != b.tobytes()


SEED_EXPECTED = "seed must be an int or a one-element int64 device array (0-d or (1,)); got "


def seed_bad_calls():
    x = dev(np.ones((2, 3), np.float32))
    return [
        (TypeError, SEED_EXPECTED + "a float32 device array",
         lambda: ops.dropout_forward(x, 0.5, dev(np.zeros(1, np.float32)))),
        (ValueError, SEED_EXPECTED + "shape (2,)",
         lambda: ops.dropout_backward(x, 0.5, dev(np.zeros(2, np.int64)))),
        (ValueError, SEED_EXPECTED + "shape (1, 1)",
         lambda: ops.dropout_forward(x, 0.5, dev(np.zeros((1, 1), np.int64)))),
        (ValueError, SEED_EXPECTED + "shape (0,)",
         lambda: ops.dropout_forward(x, 0.5, dev(np.zeros(0, np.int64)))),
        # The CPU takes int seeds only.
        (TypeError, "seed must be a non-negative int < 2**64; got DeviceArray",
         lambda: ops.dropout_forward(np.ones(3, np.float32), 0.5, dev(np.zeros(1, np.int64)))),
        # dropout_mask takes int seeds only, on both backends.
        (TypeError, "seed must be a non-negative int < 2**64; got DeviceArray",
         lambda: ops.dropout_mask(3, 0.5, dev(np.zeros(1, np.int64)))),
    ]


@pytest.mark.parametrize("case", range(6))
def test_device_seed_bad_input(case):
    exc, message, call = seed_bad_calls()[case]
    with raises_exactly(exc, message):
        call()


# ---- Adam's bias corrections ---------------------------------------------------------------------

def adam_pair(rng, shapes, steps, betas):
    """(plain, with corrections): the arrays after one adam_update_multi from the same start."""
    b1, b2 = betas
    p0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    g = [dev(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    m0 = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    v0 = [rng.random(s).astype(np.float32) for s in shapes]
    out = []
    for corrections in (None, dev(ops.adam_bias_corrections(steps, b1, b2))):
        p, m, v = [dev(a) for a in p0], [dev(a) for a in m0], [dev(a) for a in v0]
        ops.adam_update_multi(p, g, m, v, steps, 1e-2, b1, b2, 1e-8, None, corrections)
        out.append([host(a) for a in p + m + v])
    return out


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.0), (0.0, 0.9), (0.999, 0.5)])
def test_corrections_equal_the_host_made_ones_over_2000_steps(betas):
    # One single-element parameter per step count t = 1..2000: 63 launches of 32 tensors.
    steps = list(range(1, 2001))
    plain, given = adam_pair(np.random.default_rng(0), [(1,)] * len(steps), steps, betas)
    same_bits(given, plain)


@pytest.mark.parametrize("n", [1, 7, 33, 67])
def test_corrections_with_mixed_shapes_and_steps(n):
    steps = [1 + (i * 37) % 500 for i in range(n)]
    plain, given = adam_pair(np.random.default_rng(n), shapes_for(n, big=n == 33), steps,
                             (0.9, 0.999))
    same_bits(given, plain)


def test_corrections_are_read_not_the_steps():
    """With corrections given, the steps do not form them: rows of (1, 1) at step 1 update as
    step 200 does at beta 0.5 (where 1 - 0.5**200 rounds to 1), not as step 1."""
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(50).astype(np.float32)
    g = dev(rng.standard_normal(50).astype(np.float32))

    def run(step, corrections=None):
        p, m, v = dev(p0), dev(np.zeros(50, np.float32)), dev(np.zeros(50, np.float32))
        ops.adam_update_multi([p], [g], [m], [v], [step], 1e-2, 0.5, 0.5, 1e-8, None, corrections)
        return host(p)

    ones = dev(np.ones((1, 2), np.float32))
    assert run(1, ones).tobytes() == run(200).tobytes()
    assert run(1, ones).tobytes() != run(1).tobytes()


def test_adam_multi_without_corrections_unchanged():
    multi, single = adam_both(np.random.default_rng(5), shapes_for(7), np.float32, to=dev,
                              back=host)
    same_bits(multi, single)


def zd(shape=(2, 3)):
    return dev(np.zeros(shape, np.float32))


def adam(corrections, params=None, steps=(1, 2)):
    params = [zd(), zd()] if params is None else params
    return lambda: ops.adam_update_multi(params, [zd(p.shape) for p in params],
                                         [zd(p.shape) for p in params],
                                         [zd(p.shape) for p in params], list(steps),
                                         corrections=corrections)


def corrections_bad_calls():
    buf = zd((3, 2, 2))
    return [
        (TypeError, "corrections must be None or a float32 device array of shape (2, 2); got "
         "ndarray", adam(np.ones((2, 2), np.float32))),
        (TypeError, "corrections must have dtype float32; got float64",
         adam(dev(np.ones((2, 2))))),
        (ValueError, "corrections must have shape (2, 2) (one row (1 - beta1**step, "
         "1 - beta2**step) per parameter); got (3, 2)", adam(zd((3, 2)))),
        (ValueError, "corrections must have shape (2, 2) (one row (1 - beta1**step, "
         "1 - beta2**step) per parameter); got (4,)", adam(zd((4,)))),
        (ValueError, overlap("corrections", "params[1]", 16, size=16),
         adam(buf[1], params=[buf[0], buf[1]])),
        # the steps are still checked when corrections are given
        (ValueError, "steps[0] must be >= 1 (the 1-based count of this update); got 0",
         adam(zd((2, 2)), steps=(0, 1))),
    ]


@pytest.mark.parametrize("case", range(6))
def test_corrections_bad_input(case):
    exc, message, call = corrections_bad_calls()[case]
    with raises_exactly(exc, message):
        call()
