"""The multi-tensor updates (ops.sgd_update_multi, adam_update_multi) and Optimizer.step_many on
the CPU: each parameter must come out bit for bit as the single-tensor op leaves it, for one, a
few and more tensors than one GPU launch takes, mixed sizes (empty and odd ones included); every
malformed call is refused, whole message checked, before anything is written. The GPU twin:
test_optim_multi_cuda.py."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
from fastconv.autograd import Variable
from helpers import DTYPES, assert_same_bits_twice_and_on_one_thread, overlap, raises_exactly

# Tensors one GPU launch takes (csrc/cuda/optim.h): the counts below straddle it.
K = int(re.search(r"kMultiTensors = (\d+);",
                  (Path(__file__).parents[1] / "csrc/cuda/optim.h").read_text()).group(1))
COUNTS = [1, 7, K + 1, 2 * K + 3]
# Mixed sizes: empty, odd, one element, a few hundred; the CPU's threads start above 2**15.
SHAPES = [(3, 5), (0,), (1,), (257, 3), (7,), (0, 4), (2, 3, 3, 3), (33,)]
BIG = (300, 257)

SGD_CONFIGS = [dict(momentum=0.0, nesterov=False), dict(momentum=0.9, nesterov=False),
               dict(momentum=0.9, nesterov=True)]


def shapes_for(n, big=False):
    shapes = [SHAPES[i % len(SHAPES)] for i in range(n)]
    if big:
        shapes[n // 2] = BIG
    return shapes


def arrays(rng, shapes, dtype, scale=1.0):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def copies(xs):
    return [x.copy() for x in xs]


def same_bits(actual, expected):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype and a.shape == e.shape, i
        assert a.tobytes() == e.tobytes(), f"entry {i} of shape {e.shape} differs"


def decays(n):
    return [(0.0, 1e-2, 5e-4, 0.3)[i % 4] for i in range(n)]


def sgd_both(rng, shapes, dtype, cfg, steps=3, to=np.copy, back=lambda a: a):
    """(multi, single): params and velocities after `steps` updates of the multi op and of the
    single op on each parameter in turn, from the same start. `to`/`back` move arrays to the
    backend under test and back (the CUDA tests pass dev/host)."""
    n = len(shapes)
    p0 = arrays(rng, shapes, dtype)
    grads = [arrays(rng, shapes, dtype) for _ in range(steps)]
    wds = decays(n)
    v0 = [np.zeros_like(p) for p in p0]
    pm, vm = [to(p) for p in p0], [to(v) for v in v0]
    ps, vs = [to(p) for p in p0], [to(v) for v in v0]
    for g in grads:
        gd = [to(x) for x in g]
        vel = vm if cfg["momentum"] else None
        assert ops.sgd_update_multi(pm, gd, vel, 0.05, cfg["momentum"], cfg["nesterov"],
                                    wds) is None
        for i in range(n):
            ops.sgd_update(ps[i], gd[i], vs[i] if cfg["momentum"] else None, 0.05,
                           cfg["momentum"], cfg["nesterov"], wds[i])
    return ([back(a) for a in pm + vm], [back(a) for a in ps + vs])


def adam_both(rng, shapes, dtype, steps=3, to=np.copy, back=lambda a: a):
    """The same for Adam, each parameter at its own step count (as after a restored checkpoint
    or a parameter added later)."""
    n = len(shapes)
    p0 = arrays(rng, shapes, dtype)
    grads = [arrays(rng, shapes, dtype) for _ in range(steps)]
    wds, first = decays(n), [1 + (i % 5) * 3 for i in range(n)]
    z = [np.zeros_like(p) for p in p0]
    multi = [[to(a) for a in p0], [to(a) for a in z], [to(a) for a in z]]
    single = [[to(a) for a in p0], [to(a) for a in z], [to(a) for a in z]]
    for k, g in enumerate(grads):
        gd = [to(x) for x in g]
        steps_now = [s + k for s in first]
        ops.adam_update_multi(multi[0], gd, multi[1], multi[2], steps_now, 1e-2, 0.8, 0.99, 1e-6,
                              wds)
        for i in range(n):
            ops.adam_update(single[0][i], gd[i], single[1][i], single[2][i], steps_now[i], 1e-2,
                            0.8, 0.99, 1e-6, wds[i])
    return ([back(a) for xs in multi for a in xs], [back(a) for xs in single for a in xs])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("cfg", SGD_CONFIGS)
def test_sgd_multi_equals_single_bitwise(n, dtype, cfg):
    same_bits(*sgd_both(np.random.default_rng(n), shapes_for(n, big=n == 7), dtype, cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", COUNTS)
def test_adam_multi_equals_single_bitwise(n, dtype):
    same_bits(*adam_both(np.random.default_rng(n), shapes_for(n, big=n == 7), dtype))


def test_multi_same_bits_on_any_thread_count():
    # Above both thread thresholds, split over tensors of unequal sizes.
    shapes = [(70001,), (3,), (40000, 3), (0,), (5, 5)]

    def run():
        rng = np.random.default_rng(3)
        out = sgd_both(rng, shapes, np.float32, SGD_CONFIGS[2])[0]
        out += adam_both(rng, shapes, np.float64)[0]
        return b"".join(a.tobytes() for a in out)

    assert_same_bits_twice_and_on_one_thread(run)


def test_empty_lists_are_a_no_op():
    assert ops.sgd_update_multi([], [], [], 0.1, 0.9, False, []) is None
    assert ops.sgd_update_multi((), ()) is None
    assert ops.adam_update_multi([], [], [], [], []) is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_may_be_their_own_params_and_share_with_each_other(dtype):
    # As in sgd_update, grads[i] is params[i] is well defined on the CPU; gradients are only read,
    # so two entries may share one.
    rng = np.random.default_rng(4)
    p0 = arrays(rng, [(4, 3), (5,)], dtype)
    g = rng.standard_normal(5).astype(dtype)
    p = copies(p0)
    ops.sgd_update_multi(p, [p[0], g], None, 0.1, 0.0, False, [0.5, 0.0])
    q = copies(p0)
    ops.sgd_update(q[0], p0[0].copy(), None, 0.1, 0.0, False, 0.5)
    ops.sgd_update(q[1], g, None, 0.1, 0.0, False, 0.0)
    same_bits(p, q)
    shared = rng.standard_normal((2, 3)).astype(dtype)
    a, b = np.zeros((2, 3), dtype), np.ones((2, 3), dtype)
    ops.sgd_update_multi([a, b], [shared, shared], lr=1.0)
    same_bits([a, b], [-shared, 1 - shared])


# ---- malformed calls ------------------------------------------------------------------------

def z(shape=(2, 3), dtype=np.float64):
    return np.zeros(shape, dtype)


def zs(n, shape=(2, 3), dtype=np.float64):
    return [z(shape, dtype) for _ in range(n)]


def readonly():
    a = z()
    a.flags.writeable = False
    return a


def sgd(params=None, grads=None, velocities=None, **kw):
    params = zs(2) if params is None else params
    grads = zs(len(params)) if grads is None else grads
    return lambda: ops.sgd_update_multi(params, grads, velocities, **kw)


def adam(**kw):
    args = dict(params=zs(2), grads=zs(2), ms=zs(2), vs=zs(2), steps=[1, 1])
    args.update(kw)
    return lambda: ops.adam_update_multi(**args)


def views(n=8):
    """Two (6,) views of one buffer of n floats, [0:6] and [n-6:n]: 32 bytes in common at 8."""
    base = np.zeros(n)
    return base[:6], base[n - 6:]


LO, HI = views()
P = z()  # only ever passed to calls that must fail before writing
RO = " must be a writeable array (it is updated in place); got a read-only array"
PER_PARAM = " must have one entry per parameter (2, as params); got "
STEP = " (the 1-based count of this update); got "

MULTI_BAD_CALLS = [
    (TypeError, "params must be a list or tuple of arrays; got ndarray", sgd(z(), zs(2))),
    (TypeError, "params must be a list or tuple of arrays; got NoneType",
     lambda: ops.sgd_update_multi(None, zs(2))),
    (TypeError, "grads must be a list or tuple of arrays; got ndarray", sgd(zs(2), z())),
    (ValueError, "grads" + PER_PARAM + "1", sgd(zs(2), zs(1))),
    (ValueError, "grads must have one entry per parameter (0, as params); got 1", sgd([], zs(1))),
    (ValueError, "velocities" + PER_PARAM + "3", sgd(velocities=zs(3), momentum=0.9)),
    (TypeError, "velocities must be a list or tuple of arrays; got ndarray",
     sgd(velocities=z(), momentum=0.9)),
    (ValueError, "velocities must be a list of arrays like params when momentum != 0 (momentum "
     "0.9; start each at numpy.zeros_like(params[i])); got None", sgd(momentum=0.9)),
    (ValueError, "weight_decays" + PER_PARAM + "1", sgd(weight_decays=[0.1])),
    (TypeError, "weight_decays must be a list or tuple of real numbers; got float",
     sgd(weight_decays=0.1)),
    (ValueError, "weight_decays[1] must be >= 0; got -0.1", sgd(weight_decays=[0.0, -0.1])),
    (TypeError, "weight_decays[0] must be a real number; got NoneType",
     sgd(weight_decays=[None, 0.0])),
    (ValueError, "weight_decays[1] must be finite; got nan",
     sgd(weight_decays=[0.0, float("nan")])),
    (ValueError, "lr must be >= 0; got -0.1", sgd(lr=-0.1)),
    (ValueError, "nesterov=True needs momentum > 0; got momentum 0", sgd(nesterov=True)),
    (TypeError, "params[0] must be a numpy array or a fastconv DeviceArray; got list",
     sgd([[0.0, 1.0]], [z((2,))])),
    (TypeError, "params[1] must be a numpy array; got list", sgd([z(), [0.0]], zs(2))),
    (TypeError, "params[1] must have dtype float32 or float64; got int32",
     sgd([z(), z(dtype=np.int32)], [z(), z(dtype=np.int32)])),
    (TypeError, "params[1] must have the dtype of params[0] (float64); got float32",
     sgd([z(), z(dtype=np.float32)], [z(), z(dtype=np.float32)])),
    (ValueError, "params[1]" + RO, sgd([z(), readonly()])),
    (ValueError, "params[1] must be C-contiguous (pass numpy.ascontiguousarray(params[1])); got "
     "shape (3, 2) with strides (32, 16)", sgd([z(), np.ones((3, 4))[:, ::2]], [z(), z((3, 2))])),
    (ValueError, "grads[3] must have the shape of params[3] (2, 3); got (3, 2)",
     sgd(zs(4), zs(3) + [z((3, 2))])),
    (TypeError, "grads[0] must have the dtype of params[0] (float64); got float32",
     sgd(zs(2), [z(dtype=np.float32), z()])),
    (TypeError, "grads[1] must be a numpy array; got None", sgd(zs(2), [z(), None])),
    (ValueError, "velocities[1]" + RO, sgd(velocities=[z(), readonly()], momentum=0.9)),
    (ValueError, "velocities[0] must have the shape of params[0] (2, 3); got (6,)",
     sgd(velocities=[z((6,)), z()], momentum=0.9)),
    # Adam's own lists and scalars
    (ValueError, "ms" + PER_PARAM + "1", adam(ms=zs(1))),
    (ValueError, "vs" + PER_PARAM + "3", adam(vs=zs(3))),
    (TypeError, "vs must be a list or tuple of arrays; got NoneType", adam(vs=None)),
    (TypeError, "steps must be a list or tuple of ints; got int", adam(steps=1)),
    (ValueError, "steps" + PER_PARAM + "1", adam(steps=[1])),
    (ValueError, "steps[1] must be >= 1" + STEP + "0", adam(steps=[1, 0])),
    (TypeError, "steps[0] must be an int" + STEP + "float", adam(steps=[1.0, 1])),
    (TypeError, "steps[1] must be an int" + STEP + "bool", adam(steps=[1, True])),
    (ValueError, "steps[1] must be an int in [1, 2**63)" + STEP + "9223372036854775808",
     adam(steps=[1, 2**63])),
    (ValueError, "eps must be > 0; got 0.0", adam(eps=0.0)),
    (ValueError, "beta1 must be in [0, 1); got 1.0", adam(beta1=1.0)),
    (ValueError, "weight_decays[0] must be >= 0; got -1.0", adam(weight_decays=[-1.0, 0.0])),
    (TypeError, "ms[1] must have the dtype of params[1] (float64); got float32",
     adam(ms=[z(), z(dtype=np.float32)])),
    (ValueError, "vs[0] must have the shape of params[0] (2, 3); got (3, 2)",
     adam(vs=[z((3, 2)), z()])),
    # a written array must be apart from every other array of the call, across entries too
    (ValueError, overlap("params[1]", "params[0]", 48), sgd([P, P])),
    (ValueError, overlap("params[1]", "grads[0]", 48), (lambda g: sgd([z(), g], [g, z()]))(z())),
    (ValueError, overlap("grads[1]", "params[0]", 48), sgd([P, z()], [z(), P])),
    (ValueError, overlap("velocities[1]", "params[0]", 48),
     sgd([P, z()], velocities=[z(), P], momentum=0.9)),
    (ValueError, overlap("velocities[0]", "grads[0]", 48),
     (lambda g: sgd([z(), z()], [g, z()], [g, z()], momentum=0.9))(z())),
    (ValueError, overlap("params[1]", "velocities[0]", 32),
     sgd([np.ones(6), HI], zs(2, (6,)), [LO, np.zeros(6)], momentum=0.9)),
    (ValueError, overlap("velocities[1]", "velocities[0]", 32),
     sgd(zs(2, (6,)), zs(2, (6,)), [HI, LO], momentum=0.9)),
    (ValueError, overlap("grads[1]", "params[0]", 32), sgd([HI, np.ones(6)], [np.ones(6), LO])),
    # velocities given with momentum 0 are checked as sgd_update checks velocity
    (ValueError, overlap("velocities[1]", "params[1]", 48), sgd([z(), P], zs(2), [z(), P])),
    (ValueError, overlap("vs[1]", "ms[0]", 48), adam(ms=[P, z()], vs=[z(), P])),
    (ValueError, overlap("ms[1]", "grads[1]", 48),
     (lambda g: adam(grads=[z(), g], ms=[z(), g]))(z())),
    (ValueError, overlap("vs[0]", "params[0]", 32),
     adam(params=[HI, z((6,))], grads=zs(2, (6,)), ms=zs(2, (6,)), vs=[LO, z((6,))])),
]


@pytest.mark.parametrize("case", range(len(MULTI_BAD_CALLS)))
def test_multi_bad_input(case):
    exc, message, call = MULTI_BAD_CALLS[case]
    with raises_exactly(exc, message):
        call()


def test_a_refused_call_writes_nothing():
    # Every entry is checked before the first is updated.
    p, v = [np.ones((2, 3)), np.ones(4)], [z(), z((4,))]
    with raises_exactly(ValueError, "grads[1] must have the shape of params[1] (4,); got (5,)"):
        ops.sgd_update_multi(p, [np.ones((2, 3)), np.ones(5)], v, 0.1, 0.9)
    with raises_exactly(ValueError, overlap("vs[0]", "params[0]", 48)):
        ops.adam_update_multi(p, [z(), z((4,))], [z(), z((4,))], [p[0], z((4,))], [1, 1])
    same_bits(p + v, [np.ones((2, 3)), np.ones(4), z(), z((4,))])
